"""The site lifecycle: an enforced state machine, moved only by Control Site QA with a signature,
with evidence before a site may manufacture."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from pocare.ledger.canonical import content_hash
from pocare.ledger.events import LedgerEvent
from pocare.ledger.models import Event, Meaning, Signature
from pocare.ledger.signing import SigningRefused, signatures_for
from pocare.ledger.verify import signature_status
from pocare.network.events import NetworkEvent
from pocare.network.models import SITE_TRANSITIONS, RunOutcome, Site, SiteStatus, SiteTransition
from pocare.network.selectors import REQUIRED_PASSED_RUNS, site_can_start_batch
from pocare.network.services import performance_run_record, site_transition
from tests.network.conftest import complete_evidence, creds

pytestmark = pytest.mark.django_db

PAIRS = list(itertools.product(SiteStatus.values, SiteStatus.values))
ALLOWED = [(a, b) for a, b in PAIRS if b in SITE_TRANSITIONS[a]]
REFUSED = [(a, b) for a, b in PAIRS if b not in SITE_TRANSITIONS[a]]


def test_the_lifecycle_is_the_one_the_issue_describes():
    """POC-3 POC-4: proposed → onboarding → qualification → active ⇄ suspended → closed."""
    assert SITE_TRANSITIONS[SiteStatus.PROPOSED] == {SiteStatus.ONBOARDING, SiteStatus.CLOSED}
    assert SITE_TRANSITIONS[SiteStatus.ACTIVE] == {SiteStatus.SUSPENDED, SiteStatus.CLOSED}
    assert SITE_TRANSITIONS[SiteStatus.SUSPENDED] == {SiteStatus.ACTIVE, SiteStatus.CLOSED}
    assert SITE_TRANSITIONS[SiteStatus.CLOSED] == frozenset()
    assert len(ALLOWED) == 11 and len(REFUSED) == 25


@pytest.mark.parametrize(("from_status", "to_status"), ALLOWED, ids=[f"{a}-{b}" for a, b in ALLOWED])
def test_each_allowed_transition_is_made_signed_and_recorded(people, new_site, from_status, to_status):
    """POC-3 POC-4 P11-50 P11-10g: an allowed move changes the status, is signed by QA (approved)
    with printed name, and lands on the site's chain with the reason."""
    qa = people["qa"]
    site = new_site(from_status)
    if (from_status, to_status) == (SiteStatus.QUALIFICATION, SiteStatus.ACTIVE):
        complete_evidence(site, qa)
    record = site_transition(actor=qa, site=site, to_status=to_status, reason="Because the plan says so",
                             credentials=creds(qa))
    site.refresh_from_db()
    assert site.status == to_status
    assert (record.from_status, record.to_status, record.actor, record.reason) == (
        from_status, to_status, qa, "Because the plan says so")
    [signature] = signatures_for(record)
    assert signature.meaning == Meaning.APPROVED and signature.signer_printed_name == "Montserrat Puig"
    assert signature.chain == site.code and signature_status(signature) == (True, "")
    assert signature.record_hash == content_hash(record.signed_content())
    event = Event.objects.filter(chain=site.code, event_type=NetworkEvent.SITE_TRANSITIONED).get()
    assert event.old == {"status": from_status} and event.new["status"] == to_status
    assert event.reason == "Because the plan says so" and event.actor_printed_name == "Montserrat Puig"


@pytest.mark.parametrize(("from_status", "to_status"), REFUSED, ids=[f"{a}-{b}" for a, b in REFUSED])
def test_each_other_transition_is_refused_and_nothing_changes(people, new_site, from_status, to_status):
    """POC-3 P11-10f: a move the lifecycle does not allow is refused, naming the field and what is allowed."""
    qa = people["qa"]
    site = new_site(from_status)
    before = Event.objects.count()
    with pytest.raises(ValidationError) as exc:
        site_transition(actor=qa, site=site, to_status=to_status, reason="try", credentials=creds(qa))
    message = " ".join(exc.value.message_dict["to_status"])
    assert ("closed site stays closed" in message) if from_status == SiteStatus.CLOSED else ("can move to" in message)
    site.refresh_from_db()
    assert site.status == from_status
    assert not SiteTransition.objects.filter(site=site).exists()
    assert Event.objects.count() == before


def test_qualification_to_active_lists_exactly_what_is_missing(people, new_site):
    """POC-4 POC-2: a site leaves qualification only with its whole checklist and 3 passed runs;
    the refusal names each missing item and the runs still needed."""
    qa = people["qa"]
    site = new_site(SiteStatus.QUALIFICATION)
    complete_evidence(site, qa, runs=2, skip=("staff", "it"))
    performance_run_record(actor=qa, site=site, reference="PPQ-X-FAIL", performed_on=dt.date(2026, 1, 5),
                           outcome=RunOutcome.FAILED, reason="test")
    with pytest.raises(ValidationError) as exc:
        site_transition(actor=qa, site=site, to_status=SiteStatus.ACTIVE, reason="go", credentials=creds(qa))
    [message] = exc.value.message_dict["evidence"]
    assert "Operators and QC analysts trained" in message and "POCare access, devices and data feeds" in message
    assert "Facility and cleanroom" not in message  # recorded, so not missing
    assert "1 more passed process performance run (2 of 3 on record)" in message  # a failed run does not count
    site.refresh_from_db()
    assert site.status == SiteStatus.QUALIFICATION


def test_the_evidence_relied_on_is_kept_on_the_signed_transition(people, new_site):
    """POC-2 P11-70: the transition records the checks and runs it rested on, and the signature binds them."""
    qa = people["qa"]
    site = new_site(SiteStatus.QUALIFICATION)
    complete_evidence(site, qa, runs=REQUIRED_PASSED_RUNS)
    record = site_transition(actor=qa, site=site, to_status=SiteStatus.ACTIVE, reason="PPQ complete",
                             credentials=creds(qa))
    assert {c["item"] for c in record.evidence["readiness"]} == {"facility", "equipment", "staff", "procedures",
                                                                   "monitoring", "supply", "it"}
    assert [r["reference"] for r in record.evidence["performance_runs"]] == [f"PPQ-{site.code}-{i}" for i in (1, 2, 3)]
    assert record.evidence["required_passed_runs"] == 3
    assert Signature.objects.get(record_id=str(record.pk), record_type="network.SiteTransition").record_hash == \
        content_hash(record.signed_content())


@pytest.mark.parametrize("to_status", [SiteStatus.SUSPENDED, SiteStatus.CLOSED])
def test_the_control_site_cannot_be_suspended_or_closed(people, to_status):
    """POC-5: the Control Site holds the master file and is the single point of contact."""
    qa = people["qa"]
    control = Site.objects.get(code="CTRL")
    with pytest.raises(ValidationError) as exc:
        site_transition(actor=qa, site=control, to_status=to_status, reason="x", credentials=creds(qa))
    assert "Control Site" in exc.value.message_dict["to_status"][0]
    control.refresh_from_db()
    assert control.status == SiteStatus.ACTIVE


@pytest.mark.parametrize("username", ["qp", "planner", "manager.mad", "operator.mad", "inspector"])
def test_only_control_site_qa_moves_a_site(people, username):
    """P11-10g POC-4: the QP, the planner, a site manager and an inspector may not."""
    person = people[username]
    site = Site.objects.get(code="MAD")
    with pytest.raises(PermissionDenied):
        site_transition(actor=person, site=site, to_status=SiteStatus.SUSPENDED, reason="x", credentials=creds(person))
    site.refresh_from_db()
    assert site.status == SiteStatus.ACTIVE


def test_a_wrong_password_refuses_the_transition_and_is_recorded(people):
    """P11-200 P11-300: no signature, no move; the failed attempt is on record."""
    qa = people["qa"]
    site = Site.objects.get(code="MAD")
    with pytest.raises(SigningRefused):
        site_transition(actor=qa, site=site, to_status=SiteStatus.SUSPENDED, reason="x",
                        credentials=creds(qa, password="wrong"))
    site.refresh_from_db()
    assert site.status == SiteStatus.ACTIVE and not SiteTransition.objects.filter(site=site).exists()
    assert Event.objects.filter(event_type=LedgerEvent.SIGNING_FAILED, object_id=str(qa.pk)).exists()


@pytest.mark.parametrize(("field", "kwargs"), [
    ("to_status", {"to_status": "paused"}),
    ("reason", {"reason": "   "}),
])
def test_bad_input_names_the_field(people, field, kwargs):
    """Bad input is refused with a message naming the field; nothing changes."""
    qa = people["qa"]
    site = Site.objects.get(code="MAD")
    args = {"to_status": SiteStatus.SUSPENDED, "reason": "why", **kwargs}
    with pytest.raises(ValidationError) as exc:
        site_transition(actor=qa, site=site, credentials=creds(qa), **args)
    assert field in exc.value.message_dict


def test_a_suspended_site_cannot_start_a_batch_and_says_why(people):
    """POC-3: a site that is not active cannot start a batch; the refusal gives status, since when and why."""
    qa = people["qa"]
    site = Site.objects.get(code="MAD")
    assert site_can_start_batch(site) == (True, "")
    record = site_transition(actor=qa, site=site, to_status=SiteStatus.SUSPENDED,
                             reason="Cleanroom excursion under investigation", credentials=creds(qa))
    ok, why = site_can_start_batch(site)
    local = record.at.astimezone(site.tz).strftime("%Y-%m-%d %H:%M")
    assert not ok
    assert why == f"Madrid POCare site is suspended since {local} CET: Cleanroom excursion under investigation" or \
        why == f"Madrid POCare site is suspended since {local} CEST: Cleanroom excursion under investigation"
    # before the suspension it could, and it can again once made active
    assert site_can_start_batch(site, at=site.created_at + (record.at - site.created_at) / 2) == (True, "")
    site_transition(actor=qa, site=site, to_status=SiteStatus.ACTIVE, reason="CAPA closed", credentials=creds(qa))
    assert site_can_start_batch(site) == (True, "")


@pytest.mark.parametrize("status", [SiteStatus.PROPOSED, SiteStatus.ONBOARDING, SiteStatus.QUALIFICATION,
                                    SiteStatus.CLOSED])
def test_a_site_that_is_not_active_cannot_start_a_batch(new_site, status):
    """POC-3 POC-6: only an active (registered, qualified) site manufactures."""
    site = new_site(status)
    ok, why = site_can_start_batch(site)
    assert not ok and site.name in why and ("qualification" if status == "qualification" else status) in why
    assert site_can_start_batch(site, at=site.created_at - dt.timedelta(days=1))[1].endswith("not registered in the network yet.")
