"""The gate: may this person perform (or verify) this step of this master-file version at this
site now — and if not, why not (P11-10i, P11-10g, POC-1)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from pocare.accounts.services import membership_revoke, user_deactivate
from pocare.network.services import site_transition
from pocare.training import selectors, services
from pocare.training.gate import person_gate_summary, step_gate
from pocare.training.models import PersonQualification
from tests.training.helpers import (
    creds,
    make_versions,
    newcomer,
    qualification,
    qualify_operator,
    site,
    site_trained,
    train,
    train_version,
    user,
)

pytestmark = pytest.mark.django_db

STEP = "prodigy-setup"  # needs prodigy-operation; unchanged by v2
TRAINEE, NAME = "trainee.mad", "Tomás Trainee"  # new to the network: nothing the demo trained counts
CHANGED = "expansion-harvest-decision"  # changed by v2


@pytest.fixture
def versions():
    """TR-CART v1 and v2; every Madrid operator (the newcomer too) trained on v1, so v1 is effective at MAD."""
    newcomer(TRAINEE, NAME)
    made = make_versions()
    site_trained(made.v1, "MAD")
    return made


@pytest.fixture
def mad_ready(versions):
    """A Madrid operator holds every qualification and is trained on v1, as are Madrid's other
    operators (so v1 is effective at MAD)."""
    qualify_operator(TRAINEE, versions.v1)
    site_trained(versions.v1, "MAD")
    return versions


def gate(username: str, version, step: str = STEP, code: str = "MAD", **kw):
    return step_gate(person=user(username), version=version, step_id=step, site=site(code), **kw)


def test_a_qualified_trained_operator_may_perform_the_step(mad_ready):
    """P11-10i: a qualified operator, trained on the effective version, at an active site: allowed."""
    decision = gate(TRAINEE, mad_ready.v1)
    assert decision.allowed and decision.reasons == []
    assert decision.until is not None and decision.until > timezone.now()  # when a qualification runs out


def test_an_expired_qualification_closes_the_gate_and_says_since_when(versions):
    """P11-10i: an expired qualification is named, with the date it expired."""
    qualify_operator(TRAINEE, versions.v1, skip=("prodigy-operation",))
    train(TRAINEE, title="Prodigy course", qualification_code="prodigy-operation", days_ago=400)
    decision = gate(TRAINEE, versions.v1)
    assert not decision.allowed
    (reason,) = decision.reasons
    grant = PersonQualification.objects.get(person=user(TRAINEE), qualification__code="prodigy-operation")
    expiry = grant.valid_until.astimezone(site("MAD").tz).date()
    assert "prodigy-operation" in reason and f"expired on {expiry}" in reason and "requalification" in reason


def test_a_missing_qualification_is_named(versions):
    """P11-10i: a qualification never held is named with the step that needs it."""
    qualify_operator(TRAINEE, versions.v1, skip=("prodigy-operation",))
    name = qualification("prodigy-operation").name
    decision = gate(TRAINEE, versions.v1)
    assert not decision.allowed
    assert decision.reasons == [
        f"{NAME} does not hold the qualification {name} (prodigy-operation) that step '{STEP}' "
        "(Install the tubing set and load reagents) needs."
    ]


def test_the_wrong_version_is_refused_until_the_site_is_trained_on_it(mad_ready):
    """P11-10i POC-1: v2 is not usable at MAD until MAD's operators are trained on the steps it changed;
    then v2 is, and v1 no longer is."""
    before = gate(TRAINEE, mad_ready.v2, CHANGED)
    assert not before.allowed
    changed = ", ".join(mad_ready.changed)
    (version_reason,) = [r for r in before.reasons if "effective" in r]
    assert version_reason.startswith("TR-CART master file v2 is not the effective version at MAD: the site works "
                                     "to v1; it stays on v1 until its operators are trained on the steps v2 "
                                     "changed (not yet trained — ")
    assert f"{NAME}: {changed}" in version_reason
    assert any(f"not trained on step '{CHANGED}'" in r for r in before.reasons)
    train_version(TRAINEE, mad_ready.v2)
    assert not gate(TRAINEE, mad_ready.v2, CHANGED).allowed or not selectors.version_training_gaps(
        site=site("MAD"), version=mad_ready.v2)  # the others at MAD still hold v2 back, if any
    site_trained(mad_ready.v2, "MAD")
    assert gate(TRAINEE, mad_ready.v2, CHANGED).allowed
    old = gate(TRAINEE, mad_ready.v1)
    assert not old.allowed and any("the site works to v2, which replaced v1" in r for r in old.reasons)


def test_at_another_site_the_gate_is_closed(mad_ready):
    """P11-10g: a Madrid operator has no operator role in Lisbon, however well trained."""
    decision = gate(TRAINEE, mad_ready.v1, code="LIS")
    assert not decision.allowed
    assert any("holds no active operator or QC analyst role at LIS" in r for r in decision.reasons)


def test_a_site_that_is_not_active_closes_the_gate(mad_ready):
    """POC-3: no step at a suspended site; the reason says since when."""
    qa = user("qa")
    site_transition(actor=qa, site=site("MAD"), to_status="suspended", reason="Audit finding", credentials=creds(qa))
    decision = gate(TRAINEE, mad_ready.v1)
    assert not decision.allowed
    assert any(r.startswith("MAD is suspended since ") and "only at active sites" in r for r in decision.reasons)


def test_a_step_not_in_the_version_is_refused(mad_ready):
    """P11-10g: the gate knows only the steps of the version asked about."""
    decision = gate(TRAINEE, mad_ready.v1, "no-such-step")
    assert not decision.allowed and decision.reasons[-1] == f"There is no step 'no-such-step' in {mad_ready.v1}."


def test_a_deactivated_or_locked_person_is_refused(mad_ready, settings):
    """A11-IAM: the gate checks the account itself at the moment of the step."""
    operator = user(TRAINEE)
    operator.locked_at = timezone.now() - dt.timedelta(minutes=1)
    decision = step_gate(person=operator, version=mad_ready.v1, step_id=STEP, site=site("MAD"))
    assert not decision.allowed and any("is locked since" in r for r in decision.reasons)
    user_deactivate(actor=user("qa"), user=user(TRAINEE), reason="Left the hospital")
    decision = gate(TRAINEE, mad_ready.v1)
    assert not decision.allowed and any("account is deactivated since" in r for r in decision.reasons)


def test_a_revoked_role_closes_the_gate(mad_ready):
    """A11-IAM: the operator role at the site must be in force at that moment."""
    membership = user(TRAINEE).memberships.get(site__code="MAD")
    membership_revoke(actor=user("qa"), membership=membership, reason="Moved to QC")
    decision = gate(TRAINEE, mad_ready.v1)
    assert any("holds no active operator or QC analyst role at MAD (their operator role there ended on" in r
               for r in decision.reasons)


def test_a_revoked_qualification_closes_the_gate_with_the_reason(mad_ready):
    """P11-10i: Control Site QA withdraws a qualification; the gate says when and why."""
    services.qualification_revoke(actor=user("qa"), person=user(TRAINEE),
                                  qualification=PersonQualification.objects.filter(
                                      qualification__code="prodigy-operation").first().qualification,
                                  reason="Deviation DEV-12 traced to set-up")
    decision = gate(TRAINEE, mad_ready.v1)
    assert not decision.allowed
    assert any("was revoked on" in r and "Deviation DEV-12 traced to set-up" in r for r in decision.reasons)


def test_training_counts_only_once_the_trainee_has_signed(versions):
    """P11-10i: a record the trainee has not signed grants nothing and covers no step; once the
    trainee signs it, the qualification counts."""
    qualify_operator(TRAINEE, versions.v1, skip=("prodigy-operation",))
    record = train(TRAINEE, title="Prodigy course", qualification_code="prodigy-operation", sign=False)
    assert any("does not hold the qualification" in r for r in gate(TRAINEE, versions.v1).reasons)
    services.training_acknowledge(actor=user(TRAINEE), record=record, credentials=creds(user(TRAINEE)))
    assert not any("does not hold the qualification" in r for r in gate(TRAINEE, versions.v1).reasons)


def test_version_training_not_yet_signed_is_said_so(mad_ready):
    """P11-10i: the version training is recorded, but the trainee's signature is still missing."""
    train_version(TRAINEE, mad_ready.v2, sign=False)
    decision = gate(TRAINEE, mad_ready.v2, CHANGED)
    assert any("recorded but not yet signed by them" in r for r in decision.reasons)


def test_the_gate_answers_for_a_past_moment(versions):
    """DI-ALCOA P11-10i: "was it allowed then?" — before the trainee signed, the qualification did not count."""
    qualify_operator(TRAINEE, versions.v1, skip=("prodigy-operation",))
    operator = user(TRAINEE)
    record = train(TRAINEE, title="Prodigy course", qualification_code="prodigy-operation", sign=False)
    moment = timezone.now()
    services.training_acknowledge(actor=operator, record=record, credentials=creds(operator))
    then = gate(TRAINEE, versions.v1, at=moment)
    assert not then.allowed and then.at == moment
    assert any("was granted only on" in r and "when the trainee signed the training" in r for r in then.reasons)
    assert gate(TRAINEE, versions.v1).allowed


def test_a_site_manager_may_verify_but_not_perform(mad_ready):
    """P11-10g: verifying as the second person is open to the site manager; performing is not."""
    train("manager.mad", trainer="qa", title="Prodigy course", qualification_code="prodigy-operation")
    train_version("manager.mad", mad_ready.v1, trainer="qa")
    perform = gate("manager.mad", mad_ready.v1)
    verify = gate("manager.mad", mad_ready.v1, verifying=True)
    assert any("holds no active operator or QC analyst role at MAD" in r for r in perform.reasons)
    assert verify.allowed, verify.reasons
    assert not gate("qc.mad", mad_ready.v1, verifying=True).allowed


def test_the_summary_lists_every_step_with_its_decision(mad_ready):
    """P11-10i: the UI shows which steps a person may do now."""
    rows = person_gate_summary(user(TRAINEE), site("MAD"), mad_ready.v1)
    assert [r.step_id for r in rows] == [s["id"] for s in mad_ready.steps(mad_ready.v1)]
    assert all(r.decision.allowed for r in rows)
    until = {r.step_id: r.decision.until for r in rows}  # each step runs out with its own qualification
    assert until["cryopreservation"] > until["prodigy-setup"]  # 24 months against 12
    assert until["prodigy-setup"] == gate(TRAINEE, mad_ready.v1).until
    lis = person_gate_summary(user(TRAINEE), site("LIS"), mad_ready.v1)
    assert not any(r.decision.allowed for r in lis) and lis[0].common_reasons and not lis[0].step_reasons


def test_a_site_without_authorization_is_told_so(versions):
    """POC-1: a version the site is not authorized for is not effective there; the gate says so."""
    newcomer("trainee.muc", "Maria Trainee")
    qualify_operator("trainee.muc", versions.v1)
    decision = gate("trainee.muc", versions.v1, code="MUC")
    assert not decision.allowed
    assert any(r.startswith("No TR-CART master-file version is effective at MUC") and "authorization" in r
               for r in decision.reasons), decision.reasons


def test_version_training_is_cumulative(versions):
    """P11-10i: a site reaches v2 only when its operators are trained on every step changed since
    their training — training on v2's changes alone does not make up for v1 never trained."""
    late = newcomer("late.lis", "Lena Late")
    v1, v2 = versions.v1, versions.v2
    all_steps = [s["id"] for s in versions.steps(v2)]
    gaps = dict(selectors.version_training_gaps(site=site("LIS"), version=v2))
    assert gaps[late] == all_steps  # never trained: every step of v2
    train_version("late.lis", v2)  # trained on v2's changes only
    gaps = dict(selectors.version_training_gaps(site=site("LIS"), version=v2))
    assert set(gaps[late]) == set(all_steps) - set(versions.changed) and gaps[late]
    train_version("late.lis", v1)  # v1's training covers the unchanged steps
    assert late not in dict(selectors.version_training_gaps(site=site("LIS"), version=v2))
    # Training on v1 after v2 does not cover v2's changes.
    other = newcomer("other.lis", "Otto Other")
    train_version("other.lis", v1)
    assert set(dict(selectors.version_training_gaps(site=site("LIS"), version=v2))[other]) == set(versions.changed)
