"""Training records, signed by trainer and trainee; qualifications granted, renewed and revoked;
curricula — each change with its ledger event (P11-10i, P11-50, P11-10g, DI-ALCOA)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from pocare.accounts.roles import Role
from pocare.accounts.services import user_deactivate
from pocare.ledger.events import LedgerEvent
from pocare.ledger.models import Event, Meaning
from pocare.ledger.signing import SigningCredentials, SigningRefused, signatures_for
from pocare.ledger.verify import signature_status, verify_all
from pocare.training import services
from pocare.training.events import TrainingEvent
from pocare.training.models import (
    CurriculumItem,
    PersonQualification,
    TrainingKind,
    TrainingRecord,
    TrainingStatus,
)
from tests.training.helpers import creds, make_versions, newcomer, qualification, site, train, user

pytestmark = pytest.mark.django_db


def record(trainer: str = "manager.mad", trainee: str = "operator.mad", code: str = "MAD", **kw):
    args = {"kind": TrainingKind.COURSE, "title": "Aseptic course", "trained_on": timezone.now().date(),
            "qualification": qualification("aseptic-processing")}
    args.update(kw)
    return services.training_record(actor=user(trainer), trainee=user(trainee), site=site(code),
                                    credentials=creds(user(trainer)), **args)


def refused(field: str, **kw) -> str:
    """Recording is refused with a message naming ``field``; nothing is written."""
    qualification("aseptic-processing")
    events, records = Event.objects.count(), TrainingRecord.objects.count()
    with pytest.raises(ValidationError) as exc:
        record(**kw)
    assert field in exc.value.message_dict, exc.value.message_dict
    assert (Event.objects.count(), TrainingRecord.objects.count()) == (events, records)
    return exc.value.message_dict[field][0]


# --- the two signatures ---------------------------------------------------------------------------


def test_the_trainer_signs_verified_then_the_trainee_signs_performed(people):
    """P11-10i P11-50 P11-70: two signatures, each with printed name, meaning and time, bound to the record."""
    rec = record()
    assert rec.status == TrainingStatus.AWAITING_TRAINEE
    assert not PersonQualification.objects.filter(record=rec).exists()  # does not count yet
    (trainer_sig,) = signatures_for(rec)
    assert (trainer_sig.signer_printed_name, trainer_sig.meaning) == ("Lucía Navarro", Meaning.VERIFIED)
    rec = services.training_acknowledge(actor=people["operator.mad"], record=rec,
                                        credentials=creds(people["operator.mad"]))
    assert rec.status == TrainingStatus.COMPLETE and rec.completed_at is not None
    sigs = list(signatures_for(rec).order_by("id"))
    assert [(s.signer.username, s.meaning) for s in sigs] == [("manager.mad", Meaning.VERIFIED),
                                                              ("operator.mad", Meaning.PERFORMED)]
    assert all(signature_status(s) == (True, "") for s in sigs)  # both still bound to what they signed
    assert all(s.chain == "MAD" for s in sigs)


def test_only_the_trainee_signs_and_only_once(people):
    """P11-100 P11-10g: neither the trainer nor anyone else signs for the trainee; no second signature."""
    rec = record()
    for other in ("manager.mad", "qa", "operator.lis"):
        with pytest.raises(PermissionDenied):
            services.training_acknowledge(actor=people[other], record=rec, credentials=creds(people[other]))
    services.training_acknowledge(actor=people["operator.mad"], record=rec, credentials=creds(people["operator.mad"]))
    with pytest.raises(ValidationError) as exc:
        services.training_acknowledge(actor=people["operator.mad"], record=rec,
                                      credentials=creds(people["operator.mad"]))
    assert "record" in exc.value.message_dict


def test_trainer_and_trainee_are_two_people():
    """P11-10i: nobody records their own training."""
    assert "two different people" in refused("trainee", trainer="manager.mad", trainee="manager.mad")


def test_a_wrong_password_records_nothing_but_the_failed_attempt(people):
    """P11-200 P11-300: the signature is refused; no record is written; the attempt is."""
    manager = people["manager.mad"]
    qualification("aseptic-processing")
    before = TrainingRecord.objects.count()
    with pytest.raises(SigningRefused):
        services.training_record(actor=manager, trainee=people["operator.mad"], site=site("MAD"), kind="course",
                                 title="x", trained_on=timezone.now().date(),
                                 credentials=SigningCredentials(username="manager.mad", password="wrong"))
    assert TrainingRecord.objects.count() == before
    failed = Event.objects.filter(event_type=LedgerEvent.SIGNING_FAILED, object_id=str(manager.pk)).last()
    assert failed is not None and failed.new["detail"] == "wrong password"


def test_who_may_record_training(people):
    """P11-10g: site managers at their own site, Control Site QA anywhere; operators and QPs not."""
    qualification("aseptic-processing")
    for actor, code in (("operator.mad", "MAD"), ("qp", "MAD"), ("manager.lis", "MAD"), ("inspector", "MAD")):
        with pytest.raises(PermissionDenied):
            record(trainer=actor, code=code)
    assert record(trainer="qa").trainer == people["qa"]


# --- refusals, each naming its field ---------------------------------------------------------------


def test_a_deactivated_person_is_not_trained(people):
    """A11-IAM: training is not recorded for someone who no longer works here."""
    user_deactivate(actor=people["qa"], user=people["operator.mad"], reason="Left")
    assert "deactivated" in refused("trainee")


def test_training_is_recorded_at_the_trainees_site_and_a_rotation_at_the_host_site(people):
    """P11-10i: a Lisbon operator is trained at Lisbon; their rotation in Madrid is recorded at Madrid."""
    assert "no active role at MAD" in refused("trainee", trainee="operator.lis")
    assert "host site" in refused("site", kind=TrainingKind.ROTATION, qualification=None)
    rotation = record(trainee="operator.lis", kind=TrainingKind.ROTATION, qualification=None,
                      title="Rotation at Madrid")
    assert rotation.site.code == "MAD" and rotation.trainee.username == "operator.lis"


def test_scores_need_a_pass_mark_and_decide_the_outcome():
    """P11-10i: an assessment is judged against its pass mark; a score without one is refused."""
    assert "pass mark" in refused("pass_mark", kind=TrainingKind.ASSESSMENT, score=Decimal("90"), qualification=None)
    assert "score" in refused("score", kind=TrainingKind.ASSESSMENT)
    assert "0 to 100" in refused("score", kind=TrainingKind.ASSESSMENT, score=Decimal("120"), pass_mark=80)
    assert "follows the score" in refused("passed", kind=TrainingKind.ASSESSMENT, score=50, pass_mark=80, passed=True)
    failed = record(kind=TrainingKind.ASSESSMENT, score=Decimal("79.5"), pass_mark=Decimal("80"))
    assert failed.passed is False and failed.score == Decimal("79.50")
    passed = record(kind=TrainingKind.ASSESSMENT, score=80, pass_mark=80)
    assert passed.passed is True
    q = qualification("qc-flow-cytometry", pass_mark=Decimal("85"))
    if q.pass_mark is not None:  # the qualification's own pass mark applies when none is given
        graded = record(trainee="qc.mad", kind=TrainingKind.ASSESSMENT, qualification=q, score=84)
        assert graded.pass_mark == q.pass_mark and graded.passed is False


def test_dates_kinds_and_titles_are_checked():
    """P11-10i: training is recorded once it happened, with a known kind and a title."""
    assert "in the future" in refused("trained_on", trained_on=timezone.now().date() + dt.timedelta(days=2))
    assert "not a kind" in refused("kind", kind="webinar")
    assert "title" in refused("title", title="  ")


def test_version_training_names_an_approved_version_and_its_steps():
    """P11-10i POC-1: version training covers named steps of an approved (or effective) version."""
    versions = make_versions(v2=False)
    base = {"kind": TrainingKind.VERSION, "qualification": None}
    assert "names the master-file version" in refused("masterfile_version", steps=["prodigy-setup"], **base)
    assert "Name the master-file steps" in refused("steps", masterfile_version=versions.v1, **base)
    msg = refused("steps", masterfile_version=versions.v1, steps=["prodigy-setup", "teleport"], **base)
    assert msg.startswith("teleport is not a step of") and "prodigy-setup" in msg
    assert "Only version training" in refused("steps", steps=["prodigy-setup"])
    ok = record(masterfile_version=versions.v1, steps=["prodigy-setup"], **base)
    assert ok.steps == ["prodigy-setup"]


def test_version_training_on_a_draft_is_refused():
    """POC-1: nobody is trained on a draft that may still change."""
    from pocare.masterfile import services as mf
    from pocare.masterfile.models import Product
    from tests.training.helpers import document

    qa = user("qa")
    product = mf.product_create(actor=qa, code="TR-CART", name="T", indication="T", kind="autologous", reason="t")
    draft = mf.version_draft(actor=qa, product=product, document=document(1), summary="Draft", reason="t")
    assert Product.objects.filter(code="TR-CART").exists()
    msg = refused("masterfile_version", kind=TrainingKind.VERSION, qualification=None, masterfile_version=draft,
                  steps=["prodigy-setup"])
    assert "is draft" in msg


# --- qualifications granted, renewed, revoked ------------------------------------------------------


def test_a_passed_signed_record_grants_the_qualification_for_its_validity(people):
    """P11-10i: the grant runs from the day of the training for the qualification's months."""
    q = qualification("aseptic-processing")
    rec = train("operator.mad", qualification_code="aseptic-processing", days_ago=10)
    grant = PersonQualification.objects.get(record=rec)
    tz = site("MAD").tz
    assert grant.valid_from.astimezone(tz).date() == rec.trained_on
    assert grant.valid_until.astimezone(tz).date() == services.add_months(rec.trained_on, q.validity_months)
    assert grant.valid_from.astimezone(tz).time() == dt.time(0, 0)  # from local midnight
    event = Event.objects.get(event_type=TrainingEvent.QUALIFIED, object_id=str(grant.pk))
    assert event.chain == "MAD" and event.new["qualification"] == "aseptic-processing"


def test_a_failed_assessment_grants_nothing():
    """P11-10i: below the pass mark, no qualification."""
    rec = train("operator.mad", kind=TrainingKind.ASSESSMENT, qualification_code="aseptic-processing",
                score=Decimal("40"), pass_mark=Decimal("80"))
    assert rec.status == TrainingStatus.COMPLETE and not rec.passed
    assert not PersonQualification.objects.filter(record=rec).exists()


def test_requalification_adds_a_row_and_never_overwrites():
    """DI-ALCOA CH4-9: renewing a qualification leaves the earlier grant exactly as it was."""
    person = newcomer("trainee.mad", "Tomás Trainee")
    assert "never held" in refused("qualification", kind=TrainingKind.REQUALIFICATION, trainee="trainee.mad")
    first = train("trainee.mad", qualification_code="aseptic-processing", days_ago=300)
    grant = PersonQualification.objects.get(record=first)
    renewed = train("trainee.mad", kind=TrainingKind.REQUALIFICATION, qualification_code="aseptic-processing",
                    title="Requalification", days_ago=5)
    rows = list(PersonQualification.objects.filter(person=person,
                                                   qualification__code="aseptic-processing").order_by("valid_from"))
    assert [r.record_id for r in rows] == [first.pk, renewed.pk]
    untouched = rows[0]
    assert (untouched.valid_from, untouched.valid_until, untouched.revoked_at) == (
        grant.valid_from, grant.valid_until, None)
    assert rows[1].valid_until > rows[0].valid_until
    event = Event.objects.get(event_type=TrainingEvent.QUALIFIED, object_id=str(rows[1].pk))
    assert event.old["valid_until"] is not None  # the ledger shows what it extended


def test_add_months_keeps_the_day_or_takes_the_months_last():
    """P11-10i: a validity of n months ends on the same day n months later, or that month's last day."""
    assert services.add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)
    assert services.add_months(dt.date(2026, 11, 15), 14) == dt.date(2028, 1, 15)


def test_control_site_qa_revokes_a_qualification_with_a_reason(people):
    """P11-10g DI-ALCOA: revocation is QA's, needs a reason, keeps the row and is in the ledger."""
    q = qualification("aseptic-processing")
    person = newcomer("trainee.mad", "Tomás Trainee")
    train("trainee.mad", qualification_code="aseptic-processing")
    for actor in ("manager.mad", "qp", "inspector"):
        with pytest.raises(PermissionDenied):
            services.qualification_revoke(actor=people[actor], person=person, qualification=q,
                                          reason="x")
    with pytest.raises(ValidationError) as exc:
        services.qualification_revoke(actor=people["qa"], person=person, qualification=q, reason=" ")
    assert "reason" in exc.value.message_dict
    assert services.qualification_revoke(actor=people["qa"], person=person, qualification=q,
                                         reason="Media fill failed") == 1
    grant = PersonQualification.objects.get(person=person, qualification=q)
    assert grant.revoked_at is not None and grant.revoked_by == people["qa"]
    assert grant.revocation_reason == "Media fill failed"
    event = Event.objects.get(event_type=TrainingEvent.QUALIFICATION_REVOKED, object_id=str(grant.pk))
    assert event.reason == "Media fill failed" and event.chain == "MAD"
    with pytest.raises(ValidationError):  # nothing current left to revoke
        services.qualification_revoke(actor=people["qa"], person=person, qualification=q, reason="x")


# --- qualifications and curricula -------------------------------------------------------------------


def test_qualifications_and_curricula_are_control_site_qas(people):
    """P11-10g: only Control Site QA defines qualifications and changes curricula; each change is audited."""
    with pytest.raises(PermissionDenied):
        services.qualification_define(actor=people["manager.mad"], code="apheresis", name="Apheresis",
                                      validity_months=12, reason="x")
    q = services.qualification_define(actor=people["qa"], code="Apheresis-Handling", name="Apheresis handling",
                                      validity_months=24, pass_mark=Decimal("75"), reason="New step")
    assert q.code == "apheresis-handling" and q.pass_mark == Decimal("75.00")
    event = Event.objects.get(event_type=TrainingEvent.QUALIFICATION_DEFINED, object_id=str(q.pk))
    assert event.chain == "NETWORK" and event.new["validity_months"] == 24 and event.reason == "New step"
    for field, kwargs in (("code", {"code": "apheresis-handling"}), ("validity_months", {"validity_months": 0}),
                          ("pass_mark", {"pass_mark": "lots"}), ("reason", {"reason": ""})):
        args = {"code": "other", "name": "Other", "validity_months": 12, "reason": "x", **kwargs}
        with pytest.raises(ValidationError) as exc:
            services.qualification_define(actor=people["qa"], **args)
        assert field in exc.value.message_dict

    item = services.curriculum_item_add(actor=people["qa"], role=Role.NAVIGATOR, qualification=q, reason="Needed")
    with pytest.raises(ValidationError) as exc:
        services.curriculum_item_add(actor=people["qa"], role=Role.NAVIGATOR, qualification=q, reason="Again")
    assert "qualification" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.curriculum_item_add(actor=people["qa"], role="janitor", qualification=q, reason="x")
    assert "role" in exc.value.message_dict
    with pytest.raises(PermissionDenied):
        services.curriculum_item_remove(actor=people["manager.mad"], item=item, reason="x")
    item_id = item.pk
    services.curriculum_item_remove(actor=people["qa"], item=item, reason="Not needed after all")
    assert not CurriculumItem.objects.filter(pk=item_id).exists()  # no longer in force…
    ended = CurriculumItem.history.get(pk=item_id)  # …but kept, with who ended it and when
    assert ended.removed_by == people["qa"] and ended.removed_at is not None
    with pytest.raises(ValidationError):
        services.curriculum_item_remove(actor=people["qa"], item=ended, reason="twice")
    again = services.curriculum_item_add(actor=people["qa"], role=Role.NAVIGATOR, qualification=q, reason="Back")
    assert again.pk != item_id
    changes = Event.objects.filter(event_type=TrainingEvent.CURRICULUM_CHANGED, object_id=str(item_id)).order_by("id")
    assert [e.new["required"] for e in changes] == [True, False]


def test_every_training_change_is_in_the_ledger_and_the_chains_verify(people):
    """P11-10e A11-9: recorded, signed twice, granted — each an event on the site's chain; chains intact."""
    last = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0
    rec = train("operator.mad", qualification_code="cell-counting")
    types = list(Event.objects.filter(pk__gt=last, chain="MAD").values_list("event_type", flat=True))
    for expected in (TrainingEvent.RECORDED, "ledger.record_signed", TrainingEvent.ACKNOWLEDGED,
                     TrainingEvent.QUALIFIED):
        assert expected in types
    recorded = Event.objects.get(event_type=TrainingEvent.RECORDED, object_id=str(rec.pk))
    assert recorded.actor_username == "manager.mad" and recorded.new["trainee"] == people["operator.mad"].pk
    assert verify_all(chains=["MAD", "NETWORK"]).ok
