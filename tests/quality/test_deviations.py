"""Deviations through the services: classification and escalation, re-classification history,
investigation, CAPA, QA's signed impact assessment and closure with each precondition, overdue."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from pocare.ledger.canonical import content_hash
from pocare.ledger.models import Event, Meaning, Signature
from pocare.ledger.signing import SigningRefused
from pocare.ledger.verify import signature_status
from pocare.quality import selectors, services
from pocare.quality.models import (
    DeviationClassification,
    DeviationClosure,
    EscalationRule,
    ImpactAssessment,
    Notification,
)
from tests.quality import helpers as h

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _rules():  # type: ignore[no-untyped-def]
    h.rules()


def test_classifying_applies_the_escalation_rule_due_date_and_notifies_at_once(django_capture_on_commit_callbacks):
    """DEV-CLASS Q9-RISK: a critical deviation is due 30 days after opening; Control Site QA, the QP
    and the site's manager are notified in the UI and by e-mail at once."""
    d = h.deviation("MAD", opened_days_ago=2)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        row = services.deviation_classify(actor=h.user("manager.mad"), deviation=d, severity=5, occurrence=1,
                                          detectability=2, rationale="Identity could be wrong")
    d.refresh_from_db()
    assert row.result == d.classification == "critical"
    assert d.due_at == d.opened_at + dt.timedelta(days=30)
    notified = set(Notification.objects.filter(deviation=d).values_list("recipient__username", flat=True))
    assert notified == {"qa", "qa2", "qp", "manager.mad"}
    assert len(mail.outbox) == 1
    assert set(mail.outbox[0].to) == {f"{u}@demo.pocare.invalid" for u in notified}
    assert "critical" in mail.outbox[0].subject.lower() and d.reference in mail.outbox[0].subject
    event = Event.objects.filter(event_type="quality.deviation_classified", object_id=str(d.pk)).get()
    assert event.new["classification"] == "critical" and event.reason == "Identity could be wrong"


def test_minor_deviations_notify_nobody_and_are_due_in_60_days(django_capture_on_commit_callbacks):
    """DEV-CLASS: the minor rule notifies nobody; its investigation may take 60 days."""
    d = h.deviation("LIS")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        h.classify(d, "minor")
    d.refresh_from_db()
    assert d.due_at == d.opened_at + dt.timedelta(days=60)
    assert not Notification.objects.filter(deviation=d).exists() and not mail.outbox


def test_reclassification_keeps_every_scoring_and_moves_the_due_date():
    """Q9-RISK A11-9: re-classifying adds a row, the old one stays, the event has old and new."""
    d = h.deviation("MAD")
    h.classify(d, "minor")
    h.classify(d, "major")
    d.refresh_from_db()
    rows = list(DeviationClassification.objects.filter(deviation=d).order_by("classified_at", "pk"))
    assert [r.result for r in rows] == ["minor", "major"]
    assert d.classification == "major" and d.due_at == d.opened_at + dt.timedelta(days=30)
    last = Event.objects.filter(event_type="quality.deviation_classified", object_id=str(d.pk)).order_by("seq").last()
    assert last.old["classification"] == "minor" and last.new["classification"] == "major"
    assert set(Notification.objects.filter(deviation=d).values_list("recipient__username", flat=True)) == \
        {"qa", "qa2", "manager.mad"}


def test_a_new_escalation_rule_retires_the_old_and_only_qa_sets_rules():
    """DEV-CLASS A11-9: the rule in force changes by a new row; the old one is retired, not edited."""
    old = services.escalation_rule_in_force("major")
    new = services.escalation_rule_set(actor=h.user("qa"), deviation_class="major", notify_roles=["control_qa", "qp"],
                                       investigation_days=20, reason="QP wants to hear of major ones")
    old.refresh_from_db()
    assert old.retired_at is not None and services.escalation_rule_in_force("major") == new
    assert EscalationRule.objects.filter(deviation_class="major").count() == 2
    d = h.deviation("MAD")
    h.classify(d, "major")
    d.refresh_from_db()
    assert d.due_at == d.opened_at + dt.timedelta(days=20)
    for who in ("manager.mad", "qp", "operator.mad"):
        with pytest.raises(PermissionDenied):
            services.escalation_rule_set(actor=h.user(who), deviation_class="minor", notify_roles=[],
                                         investigation_days=60, reason="x")
    with pytest.raises(ValidationError) as exc:
        services.escalation_rule_set(actor=h.user("qa"), deviation_class="minor", notify_roles=["inspector"],
                                     investigation_days=0, reason="x")
    assert "notify_roles" in exc.value.message_dict


def test_classifying_refuses_bad_scores_and_people_without_the_permission():
    """Q9-RISK P11-10g: scores 1–5 only; operators and other sites' managers do not classify."""
    d = h.deviation("MAD")
    with pytest.raises(ValidationError) as exc:
        services.deviation_classify(actor=h.user("manager.mad"), deviation=d, severity=6, occurrence=1,
                                    detectability=1, rationale="x")
    assert "severity" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.deviation_classify(actor=h.user("manager.mad"), deviation=d, severity=2, occurrence=1,
                                    detectability=1, rationale=" ")
    assert "rationale" in exc.value.message_dict
    for who in ("operator.mad", "manager.lis", "qp", "inspector"):
        with pytest.raises(PermissionDenied):
            h.classify(d, "minor", who=who)


def test_closing_is_refused_for_each_missing_precondition_then_allowed_with_a_signature():
    """DEV-CLASS Q10-PQS ATMP-REL: classified, investigated with a root cause, impact assessed, every
    CAPA action done — then QA closes with a signature (approved) bound to the closure."""
    d = h.deviation("MAD")

    def problems() -> str:
        with pytest.raises(ValidationError) as exc:
            services.deviation_close(actor=h.user("qa"), deviation=d, summary="done", credentials=h.creds("qa"))
        return " ".join(exc.value.message_dict["deviation"])

    assert "not classified" in problems()
    h.classify(d, "major")
    assert "no investigation" in problems()
    with pytest.raises(ValidationError) as exc:
        h.investigate(d, root_cause="", category="machine")
    assert "root_cause" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        h.investigate(d, root_cause="unknown", category="undetermined")
    assert "root_cause_category" in exc.value.message_dict
    h.investigate(d)
    assert "not assessed" in problems() and "at least one CAPA action" in problems()
    action = h.capa(d, done=False)
    assert "1 CAPA action is not done" in problems()
    services.capa_action_done(actor=h.user("manager.mad"), action=action, note="Seal replaced")
    h.assess(d)
    assert services.closure_problems(d) == []
    before = Signature.objects.count()
    closure = services.deviation_close(actor=h.user("qa"), deviation=d, summary="Seal replaced; no impact.",
                                       credentials=h.creds("qa"))
    d.refresh_from_db()
    assert d.status == "closed" and d.closed_by == h.user("qa") and d.closure_summary == "Seal replaced; no impact."
    sig = Signature.objects.get(record_type="quality.DeviationClosure", record_id=str(closure.pk))
    assert sig.meaning == Meaning.APPROVED and Signature.objects.count() == before + 1
    assert closure.snapshot["classification"]["result"] == "major"
    assert closure.snapshot_hash == content_hash(closure.snapshot)
    assert "already closed" in problems()
    with pytest.raises(ValidationError):
        h.classify(d, "minor")


def test_a_minor_deviation_closes_without_capa_and_with_the_root_cause_undetermined():
    """DEV-CLASS: a minor deviation needs findings; its root cause may stay undetermined."""
    d = h.deviation("MAD")
    h.classify(d, "minor")
    h.investigate(d, root_cause="", category="undetermined")
    h.assess(d)
    services.deviation_close(actor=h.user("qa2"), deviation=d, summary="Minor, no impact.", credentials=h.creds("qa2"))
    d.refresh_from_db()
    assert d.status == "closed"


def test_reclassified_upward_it_needs_the_investigation_again_with_a_root_cause():
    """DEV-CLASS A11-9: the earlier investigation stays; the new record is the one in force."""
    d = h.deviation("MAD")
    h.classify(d, "minor")
    h.investigate(d, root_cause="", category="undetermined")
    h.classify(d, "major")
    h.capa(d)
    h.assess(d)
    assert any("root cause" in p for p in services.closure_problems(d))
    h.investigate(d)
    assert services.closure_problems(d) == []
    assert d.investigations.count() == 2 and d.investigation.root_cause == "Seal worn"


def test_only_control_site_qa_assesses_and_closes_and_a_wrong_password_is_refused():
    """P11-10g P11-200 ATMP-REL: site managers investigate but do not close; signing re-authenticates."""
    d = h.ready_to_close("MAD")
    for who in ("manager.mad", "qp", "operator.mad"):
        with pytest.raises(PermissionDenied):
            services.deviation_close(actor=h.user(who), deviation=d, summary="x", credentials=h.creds(who))
        with pytest.raises(PermissionDenied):
            services.deviation_impact_assess(actor=h.user(who), deviation=d, impact="negligible", rationale="x",
                                             credentials=h.creds(who))
    from pocare.ledger.signing import SigningCredentials

    with pytest.raises(SigningRefused):
        services.deviation_close(actor=h.user("qa"), deviation=d, summary="x",
                                 credentials=SigningCredentials(username="qa", password="wrong"))
    d.refresh_from_db()
    assert d.status == "open"


def test_later_changes_do_not_break_earlier_signatures():
    """P11-70 A11-9: the impact signature survives re-assessment history, closure and a later
    effectiveness check; the closure signature survives the effectiveness check."""
    d = h.ready_to_close("MAD")
    first = ImpactAssessment.objects.get(deviation=d)
    second = services.deviation_impact_assess(actor=h.user("qa2"), deviation=d, impact="negligible",
                                              rationale="Confirmed after the QC retest.", credentials=h.creds("qa2"))
    closure = services.deviation_close(actor=h.user("qa"), deviation=d, summary="Closed.", credentials=h.creds("qa"))
    action = d.capa_actions.get()
    services.capa_effectiveness_check(actor=h.user("qa"), action=action, effective=True, note="No recurrence")
    for record in (first, second, closure):
        for sig in Signature.objects.filter(record_type=record._meta.label, record_id=str(record.pk)):
            assert signature_status(sig) == (True, "")
    assert DeviationClosure.objects.get(deviation=d).snapshot["impact"]["id"] == second.pk
    d.refresh_from_db()
    assert d.impact_assessed_by == h.user("qa2")
    action.refresh_from_db()
    assert action.effective is True
    with pytest.raises(ValidationError):
        services.capa_effectiveness_check(actor=h.user("qa"), action=action, effective=False, note="again")


def test_capa_owner_must_see_the_deviation_and_dates_follow_each_other():
    """Q10-PQS: an owner at the deviation's site or the Control Site; effectiveness after the action."""
    d = h.deviation("MAD")
    today = timezone.now().date()
    with pytest.raises(ValidationError) as exc:
        services.capa_action_add(actor=h.user("manager.mad"), deviation=d, kind="corrective", description="x",
                                 owner=h.user("operator.lis"), due_on=today)
    assert "owner" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.capa_action_add(actor=h.user("manager.mad"), deviation=d, kind="corrective", description="x",
                                 owner=h.user("operator.mad"), due_on=today, effectiveness_due_on=today - dt.timedelta(1))
    assert "effectiveness_due_on" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.capa_action_add(actor=h.user("manager.mad"), deviation=d, kind="fix", description="x",
                                 owner=h.user("operator.mad"), due_on=today)
    assert "kind" in exc.value.message_dict
    action = services.capa_action_add(actor=h.user("manager.mad"), deviation=d, kind="preventive",
                                      description="Retrain", owner=h.user("operator.mad"), due_on=today)
    assert Notification.objects.filter(recipient=h.user("operator.mad"), deviation=d).exists()
    with pytest.raises(ValidationError):
        services.capa_effectiveness_check(actor=h.user("manager.mad"), action=action, effective=True, note="x")


def test_overdue_is_derived_from_the_due_date_and_the_clock():
    """DEV-CLASS: open past its due date is overdue; closing ends it; nothing is stored."""
    d = h.deviation("MAD", opened_days_ago=40)
    assert not selectors.is_overdue(d, timezone.now())  # not classified: no due date yet
    h.classify(d, "major")
    d.refresh_from_db()
    now = timezone.now()
    assert selectors.is_overdue(d, now)
    assert not selectors.is_overdue(d, d.opened_at + dt.timedelta(days=29))
    assert d in selectors.deviations_visible(h.user("qa")).filter(selectors.overdue_q(now))
    fresh = h.deviation("MAD")
    h.classify(fresh, "major")
    assert fresh not in selectors.deviations_visible(h.user("qa")).filter(selectors.overdue_q(now))


def test_site_people_see_their_own_sites_deviations_only():
    """P11-10g: scoping in the selectors (the Control Site sees the network)."""
    mad, lis = h.deviation("MAD"), h.deviation("LIS")
    assert set(selectors.deviations_visible(h.user("manager.mad"))) >= {mad}
    assert lis not in selectors.deviations_visible(h.user("manager.mad"))
    assert {mad, lis} <= set(selectors.deviations_visible(h.user("qp")))
    assert not selectors.deviations_visible(h.user("navigator.mad")).exists()


def test_notifications_are_personal_and_read_once():
    """A11-9: reading a notification is recorded; nobody reads another's."""
    d = h.deviation("MAD")
    h.classify(d, "critical")
    n = selectors.notifications_for(h.user("qp")).get(deviation=d)
    with pytest.raises(PermissionDenied):
        services.notification_read(actor=h.user("qa"), notification=n)
    services.notification_read(actor=h.user("qp"), notification=n)
    first = n.read_at
    services.notification_read(actor=h.user("qp"), notification=n)
    assert n.read_at == first and selectors.unread_count(h.user("qp")) == 0
