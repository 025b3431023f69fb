"""Quality events (REQUIREMENTS.md DEV-CLASS, Q9-RISK, Q10-PQS, ATMP-REL): opening deviations — one
function every capability calls when something departs from the master file, a specification or the
chain of custody (DESIGN rule 6: exceptions are first-class) — then classifying them by ICH Q9
scoring with the escalation rule of their class, investigating them, CAPA with effectiveness
checks, QA's signed impact assessment and signed closure; and the quality signals raised by the
comparability monitor. Every change is one transaction with its ledger event; nothing is
overwritten: re-scoring, re-investigating and re-assessing add rows beside the earlier ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, models, transaction
from django.urls import reverse
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.models import Membership, User
from pocare.accounts.roles import NETWORK_ROLES, ROLE_PERMS, Perm, Role
from pocare.accounts.services import require_perm
from pocare.ledger.canonical import content_hash
from pocare.ledger.models import Meaning
from pocare.ledger.services import event_record, reason_required
from pocare.ledger.signing import SigningCredentials, signature_apply, signing_authenticate
from pocare.network.models import Site, SiteKind
from pocare.quality import risk
from pocare.quality.events import QualityEvent
from pocare.quality.models import (
    CapaAction,
    CapaKind,
    Deviation,
    DeviationClass,
    DeviationClassification,
    DeviationClosure,
    DeviationKind,
    DeviationStatus,
    EscalationRule,
    Impact,
    ImpactAssessment,
    Investigation,
    Notification,
    QualitySignal,
    SignalOutcome,
    SignalStatus,
)
from pocare.quality.selectors import is_overdue, notifications_for  # noqa: F401  (part of this module's API)

if TYPE_CHECKING:
    from pocare.custody.models import TherapyOrder
    from pocare.manufacturing.models import Batch
    from pocare.masterfile.models import ChangeRequest, Product
    from pocare.network.models import Site

#: Investigation days when no rule is in force for a class (DEV-CLASS: typically 30 days).
DEFAULT_INVESTIGATION_DAYS = {DeviationClass.CRITICAL: 30, DeviationClass.MAJOR: 30, DeviationClass.MINOR: 60}
#: Root-cause categories (the "6 M" of an Ishikawa diagram), and "undetermined" — allowed for minor only.
ROOT_CAUSE_CATEGORIES = {
    "people": "People (training, execution)",
    "method": "Method (procedure, master file)",
    "material": "Material (starting or raw material, consumable)",
    "machine": "Machine (equipment, device, software)",
    "environment": "Environment (facility, transport, temperature)",
    "measurement": "Measurement (test method, instrument)",
    "undetermined": "Undetermined (minor deviations only)",
}
UNDETERMINED = "undetermined"
#: Roles an escalation rule may notify: everyone but the read-only inspector and the hospital's people.
NOTIFIABLE_ROLES = [r for r in Role if r not in (Role.INSPECTOR, Role.PHYSICIAN, Role.NAVIGATOR)]
MONITOR_SYSTEM = "comparability-monitor"
MAX_INVESTIGATION_DAYS = 365


def _text(value: Any, field: str, message: str, *, max_length: int | None = None) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ValidationError({field: message})
    if max_length is not None and len(text) > max_length:
        raise ValidationError({field: f"At most {max_length} characters, please."})
    return text


def _lock_open(deviation: Deviation) -> Deviation:
    """Lock the deviation row and refuse when it is closed (a closed deviation changes no more)."""
    locked = Deviation.objects.select_for_update().get(pk=deviation.pk)
    if locked.status != DeviationStatus.OPEN:
        raise ValidationError({"deviation": f"{deviation.reference} is closed; it changes no more. "
                                            "Raise a new deviation if something new is found."})
    return locked


def _refuse_closed(deviation: Deviation) -> None:
    if deviation.status != DeviationStatus.OPEN:
        raise ValidationError({"deviation": f"{deviation.reference} is closed; it changes no more."})


def _control_site() -> Site | None:
    return Site.objects.filter(kind=SiteKind.CONTROL).order_by("pk").first()


def _active(qs: models.QuerySet[Membership], now: dt.datetime) -> models.QuerySet[Membership]:
    return qs.filter(revoked_at=None, granted_at__lte=now, user__is_active=True).filter(
        models.Q(valid_until=None) | models.Q(valid_until__gt=now))


def escalation_recipients(deviation: Deviation, roles: Iterable[str]) -> list[User]:
    """Who a rule naming ``roles`` notifies about ``deviation``: the holders of its network roles at
    the Control Site, of its site roles at the deviation's site — and, whenever the rule notifies
    anyone, the deviation site's manager."""
    roles = [str(r) for r in roles]
    if not roles:
        return []
    now = timezone.now()
    control = _control_site()
    network = [r for r in roles if r in NETWORK_ROLES]
    at_site = {r for r in roles if r not in NETWORK_ROLES} | {Role.SITE_MANAGER.value}
    q = models.Q(site=deviation.site, role__in=at_site)
    if control is not None and network:
        q |= models.Q(site=control, role__in=network)
    ids = _active(Membership.objects.filter(q), now).values_list("user_id", flat=True)
    return list(User.objects.filter(pk__in=ids).order_by("username"))


def _notify(*, recipients: Iterable[User], subject: str, body: str, url: str,
            deviation: Deviation | None = None, signal: QualitySignal | None = None) -> list[Notification]:
    """A notification per person in the UI now, and an e-mail once the transaction commits."""
    now = timezone.now()
    people = list({u.pk: u for u in recipients}.values())
    rows = [Notification.objects.create(recipient=u, deviation=deviation, signal=signal, subject=subject[:200],
                                        body=body, url=url, created_at=now) for u in people]
    emails = sorted({u.email for u in people if u.email})
    if emails:
        transaction.on_commit(lambda: send_mail(f"POCare: {subject}"[:200], f"{body}\n\nSee {url}", None, emails,
                                                fail_silently=True))
    return rows


def reminder_send(*, site: Site, perm: Perm, topic: str, details: str, body: str, url: str,
                  now: dt.datetime | None = None) -> list[Notification]:
    """Remind the people whose role at ``site`` grants ``perm`` (in the UI and by e-mail) of ``topic``
    (the subject is "topic: details"): scheduled work of the apps above (the patients app's daily
    follow-up reminders). Once a day per person and topic: a job run again the same day (a retry, even
    with other details) reminds no one twice."""
    subject = f"{topic}: {details}"
    now = now or timezone.now()
    roles = [r for r, perms in ROLE_PERMS.items() if perm in perms and r not in NETWORK_ROLES]
    ids = _active(Membership.objects.filter(site=site, role__in=roles), now).values_list("user_id", flat=True)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    reminded = Notification.objects.filter(subject__startswith=f"{topic}:", created_at__gte=day).values("recipient_id")
    people = User.objects.filter(pk__in=ids).exclude(pk__in=reminded).order_by("username")
    return _notify(recipients=people, subject=subject, body=body, url=url)


def notice_send(*, subject: str, body: str, url: str, network_roles: Iterable[str] = (),
                site_perms: Iterable[tuple[Site, Perm]] = ()) -> list[Notification]:
    """Tell people of an event of the apps above that needs them now (in the UI and by e-mail): the
    holders of ``network_roles`` at the Control Site, and at each ``(site, perm)`` the people whose
    role there grants ``perm`` (a recall: QA and the QP, the sites holding the lot, the treating
    hospitals). Each person once, however many of these name them."""
    now = timezone.now()
    q = models.Q(pk__in=[])
    control = _control_site()
    if control is not None and (network := [str(r) for r in network_roles]):
        q |= models.Q(site=control, role__in=network)
    for site, perm in site_perms:
        q |= models.Q(site=site, role__in=[r for r, perms in ROLE_PERMS.items()
                                           if perm in perms and r not in NETWORK_ROLES])
    ids = _active(Membership.objects.filter(q), now).values_list("user_id", flat=True)
    return _notify(recipients=User.objects.filter(pk__in=ids).order_by("username"), subject=subject, body=body,
                   url=url)


def deviation_url(deviation: Deviation) -> str:
    return reverse("quality:deviation", args=[deviation.reference])


def _next_reference(site: Site, year: int) -> str:
    prefix = f"DEV-{site.code}-{year}-"
    last = (Deviation.objects.filter(reference__startswith=prefix).order_by("-reference")
            .values_list("reference", flat=True).first())
    number = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{number:04d}"


def deviation_open(
    *,
    actor: User | None,
    site: Site,
    kind: DeviationKind | str,
    title: str,
    description: str,
    source: models.Model | None = None,
    batch: Batch | None = None,
    order: TherapyOrder | None = None,
    product: Product | None = None,
    step_id: str = "",
    system: str = "",
    reason: str = "",
) -> Deviation:
    """Open a deviation at ``site`` (in the caller's transaction when there is one).

    Automatic deviations pass the person whose action revealed it as ``actor`` (or, for a device
    feed or logger upload with no person, ``actor=None`` and ``system``); the source record is kept
    so that review by exception links straight to it.
    """
    if kind not in DeviationKind.values:
        raise ValidationError({"kind": f"{kind!r} is not a kind of deviation; use one of: "
                                       f"{', '.join(DeviationKind.values)}."})
    title = (title or "").strip()
    description = (description or "").strip()
    if not title:
        raise ValidationError({"title": "Give the deviation a title: what happened, in a line."})
    if not description:
        raise ValidationError({"description": "Describe what happened and where."})
    if batch is not None:
        order = order or batch.order
        product = product or batch.masterfile_version.product
    with transaction.atomic():
        now = timezone.now()
        deviation = Deviation.objects.create(
            reference=_next_reference(site, now.year), site=site, kind=str(kind), title=title[:200],
            description=description, product=product, batch=batch, order=order, step_id=step_id,
            source_type=source._meta.label if source is not None else "",
            source_id=str(source.pk) if source is not None else "",
            opened_at=now, opened_by=actor, opened_by_system="" if actor is not None else system,
        )
        event_record(
            actor=actor, system=system, event_type=QualityEvent.DEVIATION_OPENED, site=site, obj=deviation,
            reason=reason or description,
            new={"reference": deviation.reference, "kind": str(kind), "title": deviation.title,
                 "batch": batch.reference if batch is not None else None,
                 "order": order.coi if order is not None and order.coi else None,
                 "step_id": step_id, "source": f"{deviation.source_type}#{deviation.source_id}" if source else ""},
        )
    return deviation


def deviation_raise(
    *, actor: User, site: Site, title: str, description: str, batch: Batch | None = None, step_id: str = "",
) -> Deviation:
    """A person raises a deviation by hand (kind *other*)."""
    if access.is_read_only(actor) or not access.has_perm(actor, Perm.DEVIATION_RAISE, site_id=site.pk):
        raise PermissionDenied("You may not raise deviations at this site.")
    return deviation_open(actor=actor, site=site, kind=DeviationKind.OTHER, title=title, description=description,
                          batch=batch, step_id=step_id)


# --- classification and escalation (DEV-CLASS, Q9-RISK) ---------------------------------------------


def escalation_rule_in_force(deviation_class: str) -> EscalationRule | None:
    """The newest rule of the class that is not retired (None: the class has no rule)."""
    return (EscalationRule.objects.filter(deviation_class=deviation_class, retired_at=None)
            .order_by("-created_at", "-pk").first())


def escalation_rule_set(*, actor: User, deviation_class: str, notify_roles: Iterable[str], investigation_days: int,
                        reason: str) -> EscalationRule:
    """Control Site QA sets what happens when a deviation is classified ``deviation_class``: whom to
    notify at once and how many days its investigation may take. The previous rule is retired, not
    changed, so which rule applied on any day can be answered."""
    require_perm(actor, Perm.DEVIATION_CLOSE)
    if not access.holds_network_wide(actor, Perm.DEVIATION_CLOSE):
        raise PermissionDenied("Escalation rules are set by Control Site QA.")
    if deviation_class not in DeviationClass.values:
        raise ValidationError({"deviation_class": f"{deviation_class!r} is not a class; use one of: "
                                                  f"{', '.join(DeviationClass.values)}."})
    if isinstance(notify_roles, str) or not isinstance(notify_roles, Iterable):
        raise ValidationError({"notify_roles": "Give a list of roles."})
    roles = sorted({str(r) for r in notify_roles})
    allowed = [r.value for r in NOTIFIABLE_ROLES]
    wrong = [r for r in roles if r not in allowed]
    if wrong:
        raise ValidationError({"notify_roles": f"{', '.join(wrong)}: not a role that can be notified; use any of: "
                                               f"{', '.join(allowed)}."})
    if isinstance(investigation_days, bool) or not isinstance(investigation_days, int) \
            or not 1 <= investigation_days <= MAX_INVESTIGATION_DAYS:
        raise ValidationError({"investigation_days": f"Give a whole number of days from 1 to "
                                                     f"{MAX_INVESTIGATION_DAYS}."})
    reason = reason_required(reason)
    with transaction.atomic():
        now = timezone.now()
        previous = list(EscalationRule.objects.select_for_update().filter(deviation_class=deviation_class,
                                                                          retired_at=None))
        for rule in previous:
            rule.retired_at = now
            rule.save(update_fields=["retired_at"])
        rule = EscalationRule.objects.create(deviation_class=deviation_class, notify_roles=roles,
                                             investigation_days=investigation_days, created_by=actor, created_at=now)
        old = previous[0] if previous else None
        event_record(actor=actor, event_type=QualityEvent.ESCALATION_RULE_SET, obj=rule, reason=reason,
                     old={"notify_roles": old.notify_roles, "investigation_days": old.investigation_days,
                          "rule": old.pk} if old else None,
                     new={"deviation_class": deviation_class, "notify_roles": roles,
                          "investigation_days": investigation_days})
    return rule


def deviation_classify(*, actor: User, deviation: Deviation, severity: int, occurrence: int, detectability: int,
                       rationale: str, notify: bool = True) -> DeviationClassification:
    """Score a deviation on the ICH Q9 scales of ``pocare.quality.risk`` and classify it (Q9-RISK,
    DEV-CLASS). The escalation rule in force for the class sets the investigation's due date
    (opened + the rule's days) and notifies the rule's people at once, in the UI and by e-mail.
    Re-classifying adds a row — the earlier scorings stay — and notifies again only when the class
    changes. ``notify=False`` is for loading history (the demo), where the news is long past."""
    require_perm(actor, Perm.DEVIATION_INVESTIGATE, site=deviation.site)
    try:
        s = risk.score("severity", severity)
        o = risk.score("occurrence", occurrence)
        d = risk.score("detectability", detectability)
    except risk.ScoreError as exc:
        raise ValidationError({exc.field: str(exc)}) from None
    rationale = _text(rationale, "rationale", "Say why you scored it so: the rationale is kept with the scores.")
    result = risk.classify(s, o, d)
    with transaction.atomic():
        locked = _lock_open(deviation)
        now = timezone.now()
        rule = escalation_rule_in_force(result)
        days = rule.investigation_days if rule is not None else DEFAULT_INVESTIGATION_DAYS[DeviationClass(result)]
        old = {"classification": locked.classification or None, "due_at": locked.due_at}
        row = DeviationClassification.objects.create(
            deviation=locked, severity=s, occurrence=o, detectability=d, result=result, rationale=rationale,
            classified_by=actor, classified_at=now)
        deviation.classification = locked.classification = result
        deviation.due_at = locked.due_at = locked.opened_at + dt.timedelta(days=days)
        locked.save(update_fields=["classification", "due_at"])
        notified: list[Notification] = []
        if notify and rule is not None and result != old["classification"]:
            label = DeviationClass(result).label.lower()
            notified = _notify(
                recipients=escalation_recipients(locked, rule.notify_roles),
                subject=f"{label.capitalize()} deviation {locked.reference} at {locked.site.code}",
                body=(f"{locked.reference} ({locked.title}) was classified {label} by {actor.printed_name}: "
                      f"severity {s}, occurrence {o}, detectability {d} (RPN {risk.rpn(s, o, d)}).\n"
                      f"Rationale: {rationale}\nThe investigation is due by "
                      f"{locked.due_at.astimezone(locked.site.tz):%Y-%m-%d %H:%M} {locked.site.time_zone}."),
                url=deviation_url(locked), deviation=locked)
        event_record(actor=actor, event_type=QualityEvent.DEVIATION_CLASSIFIED, site=locked.site, obj=locked,
                     reason=rationale, old=old,
                     new={"classification": result, "severity": s, "occurrence": o, "detectability": d,
                          "rpn": risk.rpn(s, o, d), "due_at": locked.due_at, "rule": rule.pk if rule else None,
                          "notified": [n.recipient.username for n in notified]})
    return row


# --- investigation and CAPA (Q10-PQS) ---------------------------------------------------------------


def _needs_root_cause(deviation: Deviation) -> bool:
    return deviation.classification in (DeviationClass.CRITICAL, DeviationClass.MAJOR)


def investigation_record(*, actor: User, deviation: Deviation, findings: str, root_cause: str,
                         root_cause_category: str, reason: str) -> Investigation:
    """Record the investigation: what was found and its root cause. A classified deviation only
    (the class decides how deep it goes): a critical or major one needs a root cause and a category
    other than *undetermined*; a minor one needs findings, its root cause may stay undetermined.
    Recording again adds a row (the latest is in force)."""
    require_perm(actor, Perm.DEVIATION_INVESTIGATE, site=deviation.site)
    _refuse_closed(deviation)
    if not deviation.classification:
        raise ValidationError({"deviation": "Classify the deviation first: its class decides what the "
                                            "investigation must establish."})
    findings = _text(findings, "findings", "Describe what the investigation found.")
    root_cause = (root_cause or "").strip() if isinstance(root_cause, str) else ""
    category = (root_cause_category or "").strip() if isinstance(root_cause_category, str) else ""
    if category not in ROOT_CAUSE_CATEGORIES:
        raise ValidationError({"root_cause_category": f"{category!r} is not a category; use one of: "
                                                      f"{', '.join(ROOT_CAUSE_CATEGORIES)}."})
    if _needs_root_cause(deviation):
        if not root_cause:
            raise ValidationError({"root_cause": f"A {deviation.classification} deviation needs its root cause."})
        if category == UNDETERMINED:
            raise ValidationError({"root_cause_category": f"A {deviation.classification} deviation needs a "
                                                          "determined root cause; choose its category."})
    reason = reason_required(reason)
    with transaction.atomic():
        locked = _lock_open(deviation)
        previous = locked.investigation
        row = Investigation.objects.create(deviation=locked, findings=findings, root_cause=root_cause,
                                           root_cause_category=category, completed_by=actor,
                                           completed_at=timezone.now())
        event_record(actor=actor, event_type=QualityEvent.INVESTIGATION_RECORDED, site=locked.site, obj=locked,
                     reason=reason,
                     old={"findings": previous.findings, "root_cause": previous.root_cause,
                          "root_cause_category": previous.root_cause_category} if previous else None,
                     new={"investigation": row.pk, "findings": findings, "root_cause": root_cause,
                          "root_cause_category": category})
    return row


def _date(value: Any, field: str) -> dt.date:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise ValidationError({field: "Give a date as YYYY-MM-DD."})
    return value


def capa_action_add(*, actor: User, deviation: Deviation, kind: str, description: str, owner: User,
                    due_on: dt.date, change_request: ChangeRequest | None = None,
                    effectiveness_due_on: dt.date | None = None) -> CapaAction:
    """Plan one corrective or preventive action with its owner and due date, and optionally when its
    effectiveness is to be checked and the master-file change request it leads to (Q10-PQS)."""
    require_perm(actor, Perm.DEVIATION_INVESTIGATE, site=deviation.site)
    _refuse_closed(deviation)
    if kind not in CapaKind.values:
        raise ValidationError({"kind": f"{kind!r} is not a kind of action; use one of: {', '.join(CapaKind.values)}."})
    description = _text(description, "description", "Describe the action.")
    if not isinstance(owner, User) or not owner.is_active:
        raise ValidationError({"owner": "Choose an active person as the owner."})
    if owner.pk not in set(capa_owner_choices(deviation).values_list("pk", flat=True)):
        raise ValidationError({"owner": f"{owner.username} holds no role at {deviation.site.code} or the Control "
                                        "Site; the owner must be able to see the deviation."})
    due_on = _date(due_on, "due_on")
    if due_on < deviation.opened_at.date():
        raise ValidationError({"due_on": "The action cannot be due before the deviation was opened."})
    if effectiveness_due_on is not None:
        effectiveness_due_on = _date(effectiveness_due_on, "effectiveness_due_on")
        if effectiveness_due_on < due_on:
            raise ValidationError({"effectiveness_due_on": "The effectiveness check comes after the action is due."})
    if change_request is not None and deviation.product_id and change_request.product_id != deviation.product_id:
        raise ValidationError({"change_request": f"{change_request.reference} changes another product's master "
                                                 "file."})
    with transaction.atomic():
        locked = _lock_open(deviation)
        action = CapaAction.objects.create(
            deviation=locked, kind=kind, description=description, owner=owner, due_on=due_on,
            change_request=change_request, effectiveness_due_on=effectiveness_due_on, created_by=actor,
            created_at=timezone.now())
        event_record(actor=actor, event_type=QualityEvent.CAPA_ACTION_ADDED, site=locked.site, obj=action,
                     reason=description,
                     new={"deviation": locked.reference, "kind": kind, "owner": owner.username, "due_on": due_on,
                          "effectiveness_due_on": effectiveness_due_on,
                          "change_request": change_request.reference if change_request else None})
        if owner.pk != actor.pk:
            _notify(recipients=[owner], subject=f"CAPA action for you on {locked.reference}",
                    body=f"{actor.printed_name} made you the owner of a {CapaKind(kind).label.lower()} action on "
                         f"{locked.reference}, due {due_on.isoformat()}:\n{description}",
                    url=deviation_url(locked) + f"#capa-{action.pk}", deviation=locked)
    return action


def capa_owner_choices(deviation: Deviation) -> models.QuerySet[User]:
    """People who may own an action of ``deviation``: active roles at its site or the Control Site."""
    control = _control_site()
    sites = [deviation.site_id] + ([control.pk] if control is not None else [])
    ids = _active(Membership.objects.filter(site_id__in=sites), timezone.now()).exclude(
        role__in=[Role.INSPECTOR]).values_list("user_id", flat=True)
    return User.objects.filter(pk__in=ids).order_by("username")


def capa_action_done(*, actor: User, action: CapaAction, note: str) -> CapaAction:
    """Record that an action is done, with what was done."""
    require_perm(actor, Perm.DEVIATION_INVESTIGATE, site=action.deviation.site)
    note = _text(note, "note", "Say what was done.")
    with transaction.atomic():
        _lock_open(action.deviation)
        locked = CapaAction.objects.select_for_update().get(pk=action.pk)
        if locked.done_at is not None:
            raise ValidationError({"action": "This action is already done."})
        action.done_at, action.done_by, action.done_note = timezone.now(), actor, note
        action.save(update_fields=["done_at", "done_by", "done_note"])
        event_record(actor=actor, event_type=QualityEvent.CAPA_ACTION_DONE, site=action.deviation.site, obj=action,
                     reason=note, old={"done_at": None}, new={"done_at": action.done_at, "note": note})
    return action


def capa_effectiveness_check(*, actor: User, action: CapaAction, effective: bool, note: str) -> CapaAction:
    """Record whether a done action worked (Q10-PQS). May come after the deviation is closed; an
    action found not effective is answered by a new deviation or CAPA, never by editing this one."""
    require_perm(actor, Perm.DEVIATION_INVESTIGATE, site=action.deviation.site)
    if not isinstance(effective, bool):
        raise ValidationError({"effective": "Say whether the action was effective: true or false."})
    note = _text(note, "note", "Say what the check looked at and found.")
    with transaction.atomic():
        locked = CapaAction.objects.select_for_update().get(pk=action.pk)
        if locked.done_at is None:
            raise ValidationError({"action": "The action is not done yet; check its effectiveness once it is."})
        if locked.effective is not None:
            raise ValidationError({"action": "The effectiveness of this action was already checked."})
        action.effective, action.effectiveness_note = effective, note
        action.effectiveness_checked_by, action.effectiveness_checked_at = actor, timezone.now()
        action.save(update_fields=["effective", "effectiveness_note", "effectiveness_checked_by",
                                   "effectiveness_checked_at"])
        event_record(actor=actor, event_type=QualityEvent.CAPA_EFFECTIVENESS_CHECKED, site=action.deviation.site,
                     obj=action, reason=note, old={"effective": None}, new={"effective": effective})
    return action


# --- impact and closure (ATMP-REL), signed by Control Site QA ----------------------------------------


def deviation_impact_assess(*, actor: User, deviation: Deviation, impact: str, rationale: str,
                            credentials: SigningCredentials) -> ImpactAssessment:
    """Control Site QA assesses the deviation's impact on the product, signed (meaning: reviewed).
    The signature is on a written-once :class:`ImpactAssessment`; assessing again adds one."""
    require_perm(actor, Perm.DEVIATION_CLOSE, site=deviation.site)
    _refuse_closed(deviation)
    if impact not in Impact.values:
        raise ValidationError({"impact": f"{impact!r} is not an impact; use one of: {', '.join(Impact.values)}."})
    rationale = _text(rationale, "rationale", "Give the rationale of the assessment.")
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        locked = _lock_open(deviation)
        now = timezone.now()
        old = {"impact": locked.impact or None, "impact_rationale": locked.impact_rationale or None}
        row = ImpactAssessment.objects.create(deviation=locked, impact=impact, rationale=rationale,
                                              deviation_hash=locked.content_hash(), assessed_by=actor,
                                              assessed_at=now)
        for target in (locked, deviation):
            target.impact, target.impact_rationale = impact, rationale
            target.impact_assessed_by, target.impact_assessed_at = actor, now
        locked.save(update_fields=["impact", "impact_rationale", "impact_assessed_by", "impact_assessed_at"])
        event_record(actor=actor, event_type=QualityEvent.IMPACT_ASSESSED, site=locked.site, obj=locked,
                     reason=rationale, old=old, new={"impact": impact, "impact_rationale": rationale,
                                                     "assessment": row.pk})
        signature_apply(proof=proof, record=row, meaning=Meaning.REVIEWED, site=locked.site,
                        reason=f"impact assessed: {Impact(impact).label}")
    return row


def closure_problems(deviation: Deviation) -> list[str]:
    """Everything that stops ``deviation`` from being closed now (empty: it may be closed).

    Classified; investigated with findings — and, when critical or major, a determined root cause;
    impact assessed by QA; at least one CAPA action when critical or major; every CAPA action done.
    Effectiveness checks may fall due after closing."""
    problems = []
    if deviation.status != DeviationStatus.OPEN:
        return [f"{deviation.reference} is already closed."]
    if not deviation.classification:
        problems.append("It is not classified.")
    investigation = deviation.investigation
    if investigation is None:
        problems.append("It has no investigation.")
    elif _needs_root_cause(deviation) and (not investigation.root_cause
                                            or investigation.root_cause_category == UNDETERMINED):
        problems.append(f"A {deviation.classification} deviation needs a determined root cause; record the "
                        "investigation again with it.")
    if not deviation.impact:
        problems.append("Its impact on the product is not assessed.")
    actions = list(deviation.capa_actions.all())
    if _needs_root_cause(deviation) and not actions:
        problems.append(f"A {deviation.classification} deviation needs at least one CAPA action.")
    open_actions = [a for a in actions if a.done_at is None]
    if open_actions:
        problems.append(f"{len(open_actions)} CAPA action{'s are' if len(open_actions) > 1 else ' is'} not done.")
    return problems


def _closure_snapshot(deviation: Deviation) -> dict[str, Any]:
    classification = deviation.classifications.order_by("-classified_at", "-pk").first()
    investigation = deviation.investigation
    assessment = deviation.impact_assessments.order_by("-assessed_at", "-pk").first()
    assert classification is not None and investigation is not None and assessment is not None
    return {
        "deviation": deviation.reference, "deviation_hash": deviation.content_hash(),
        "classification": {"id": classification.pk, "result": classification.result,
                           "severity": classification.severity, "occurrence": classification.occurrence,
                           "detectability": classification.detectability},
        "investigation": {"id": investigation.pk, "findings": investigation.findings,
                          "root_cause": investigation.root_cause,
                          "root_cause_category": investigation.root_cause_category},
        "impact": {"id": assessment.pk, "impact": assessment.impact},
        "capa": [{"id": a.pk, "kind": a.kind, "owner": a.owner_id, "done_at": a.done_at.isoformat() if a.done_at
                  else None, "effectiveness_due_on": a.effectiveness_due_on.isoformat()
                  if a.effectiveness_due_on else None} for a in deviation.capa_actions.order_by("pk")],
    }


def deviation_close(*, actor: User, deviation: Deviation, summary: str,
                    credentials: SigningCredentials) -> DeviationClosure:
    """Control Site QA closes the deviation, signed (meaning: approved), when nothing in
    :func:`closure_problems` stands in the way. The signature is on a written-once
    :class:`DeviationClosure` holding a snapshot of what was closed, so nothing done later (an
    effectiveness check) breaks it, and nothing closed can be changed unseen."""
    require_perm(actor, Perm.DEVIATION_CLOSE, site=deviation.site)
    summary = _text(summary, "summary", "Summarize the outcome: what happened, why, and what was done.")
    problems = closure_problems(deviation)
    if problems:
        raise ValidationError({"deviation": problems})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        locked = _lock_open(deviation)
        problems = closure_problems(locked)
        if problems:
            raise ValidationError({"deviation": problems})
        now = timezone.now()
        snapshot = _closure_snapshot(locked)
        closure = DeviationClosure.objects.create(deviation=locked, summary=summary, snapshot=snapshot,
                                                  snapshot_hash=content_hash(snapshot), closed_by=actor, closed_at=now)
        for target in (locked, deviation):
            target.status, target.closed_by, target.closed_at, target.closure_summary = (
                DeviationStatus.CLOSED, actor, now, summary)
        locked.save(update_fields=["status", "closed_by", "closed_at", "closure_summary"])
        event_record(actor=actor, event_type=QualityEvent.DEVIATION_CLOSED, site=locked.site, obj=locked,
                     reason=summary, old={"status": DeviationStatus.OPEN},
                     new={"status": DeviationStatus.CLOSED, "closure": closure.pk,
                          "snapshot_hash": closure.snapshot_hash})
        signature_apply(proof=proof, record=closure, meaning=Meaning.APPROVED, site=locked.site,
                        reason=f"deviation closed: {summary}"[:500])
    return closure


# --- notifications ----------------------------------------------------------------------------------


def notification_read(*, actor: User, notification: Notification) -> Notification:
    """Mark one of one's own notifications read (idempotent)."""
    if notification.recipient_id != actor.pk:
        raise PermissionDenied("This notification is someone else's.")
    if notification.read_at is not None:
        return notification
    with transaction.atomic():
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
        event_record(actor=actor, event_type=QualityEvent.NOTIFICATION_READ, obj=notification,
                     reason="Notification read", new={"read_at": notification.read_at})
    return notification


# --- quality signals from the comparability monitor (Q10-PQS monitoring) -----------------------------


def signal_raise(*, site: Site, product: Product, attribute_id: str, rule: str, summary: str,
                 evidence: dict[str, Any], fingerprint: str) -> tuple[QualitySignal, bool]:
    """Raise a quality signal from the comparability monitor (no person: the ledger names the system
    ``comparability-monitor``) and notify Control Site QA. The same ``fingerprint`` is raised once:
    the second call returns the first signal and ``False``."""
    fingerprint = _text(fingerprint, "fingerprint", "Give the signal's fingerprint.", max_length=64)
    attribute_id = _text(attribute_id, "attribute_id", "Name the quality attribute.", max_length=64)
    rule = _text(rule, "rule", "Name the rule that fired, e.g. nelson-2 or tost.", max_length=60)
    summary = _text(summary, "summary", "Summarize the signal in a line.")
    if not isinstance(evidence, dict):
        raise ValidationError({"evidence": "Give the evidence as a JSON object."})
    existing = QualitySignal.objects.filter(fingerprint=fingerprint).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            signal = QualitySignal.objects.create(site=site, product=product, attribute_id=attribute_id, rule=rule,
                                                  summary=summary, evidence=evidence, fingerprint=fingerprint,
                                                  raised_at=timezone.now())
            event_record(actor=None, system=MONITOR_SYSTEM, event_type=QualityEvent.SIGNAL_RAISED, site=site,
                         obj=signal, reason=summary,
                         new={"product": product.code, "attribute_id": attribute_id, "rule": rule,
                              "fingerprint": fingerprint, "evidence": evidence})
            control = _control_site()
            qa = _active(Membership.objects.filter(site=control, role=Role.CONTROL_QA), timezone.now()) \
                .values_list("user_id", flat=True) if control is not None else []
            _notify(recipients=User.objects.filter(pk__in=list(qa)), signal=signal,
                    subject=f"Quality signal at {site.code}: {attribute_id} ({rule})",
                    body=f"The comparability monitor raised a signal for {product.code} at {site.code}: {summary}",
                    url=reverse("quality:signals") + f"#signal-{signal.pk}")
    except IntegrityError:  # raised meanwhile by another process: the same signal, once
        return QualitySignal.objects.get(fingerprint=fingerprint), False
    return signal, True


def safety_signal_raise(*, actor: User, site: Site, product: Product, rule: str, summary: str,
                        evidence: dict[str, Any], fingerprint: str) -> tuple[QualitySignal, bool]:
    """Raise a quality signal from a patient's serious adverse event (PAT-GRADE: pharmacovigilance) and
    notify Control Site QA and the QP. The caller keeps identifying data out of ``summary`` and
    ``evidence`` (a pseudonym at most). Raised once per ``fingerprint``; the ledger names the person who
    recorded the event, on the treating site's chain."""
    fingerprint = _text(fingerprint, "fingerprint", "Give the signal's fingerprint.", max_length=64)
    rule = _text(rule, "rule", "Name the rule that fired, e.g. serious-adverse-event.", max_length=60)
    summary = _text(summary, "summary", "Summarize the signal in a line.")
    existing = QualitySignal.objects.filter(fingerprint=fingerprint).first()
    if existing is not None:
        return existing, False
    with transaction.atomic():
        signal = QualitySignal.objects.create(site=site, product=product, attribute_id="adverse-event", rule=rule,
                                              summary=summary, evidence=evidence, fingerprint=fingerprint,
                                              raised_at=timezone.now())
        event_record(actor=actor, event_type=QualityEvent.SIGNAL_RAISED, site=site, obj=signal, reason=summary,
                     new={"product": product.code, "attribute_id": "adverse-event", "rule": rule,
                          "fingerprint": fingerprint, "evidence": evidence})
        control = _control_site()
        people = _active(Membership.objects.filter(site=control, role__in=(Role.CONTROL_QA, Role.QP)),
                         timezone.now()).values_list("user_id", flat=True) if control is not None else []
        _notify(recipients=User.objects.filter(pk__in=list(people)), signal=signal,
                subject=f"Serious adverse event at {site.code} ({product.code})", body=summary,
                url=reverse("quality:signals") + f"#signal-{signal.pk}")
    return signal, True


def signal_resolve(*, actor: User, signal: QualitySignal, outcome: str, deviation: Deviation | None = None,
                   change_request: ChangeRequest | None = None, decision: str = "", reason: str,
                   credentials: SigningCredentials) -> QualitySignal:
    """Control Site QA resolves a signal, signed (meaning: reviewed), by linking it to an open deviation
    of the signal's site, a change request of its product, or a documented decision (Q10-PQS)."""
    require_perm(actor, Perm.DEVIATION_CLOSE, site=signal.site)
    if outcome not in SignalOutcome.values:
        raise ValidationError({"outcome": f"{outcome!r} is not an outcome; use one of: "
                                          f"{', '.join(SignalOutcome.values)}."})
    decision = (decision or "").strip() if isinstance(decision, str) else ""
    if outcome == SignalOutcome.DEVIATION:
        if deviation is None:
            raise ValidationError({"deviation": "Name the deviation the signal is linked to."})
        if deviation.site_id != signal.site_id:
            raise ValidationError({"deviation": f"{deviation.reference} is at {deviation.site.code}; the signal is "
                                                f"at {signal.site.code}."})
        if deviation.status != DeviationStatus.OPEN:
            raise ValidationError({"deviation": f"{deviation.reference} is closed; link an open deviation or "
                                                f"raise a new one."})
    elif outcome == SignalOutcome.CHANGE_REQUEST:
        if change_request is None:
            raise ValidationError({"change_request": "Name the change request the signal is linked to."})
        if change_request.product_id != signal.product_id:
            raise ValidationError({"change_request": f"{change_request.reference} changes another product."})
    elif not decision:
        raise ValidationError({"decision": "Document the decision: why no action is needed."})
    reason = reason_required(reason)
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        locked = QualitySignal.objects.select_for_update().get(pk=signal.pk)
        if locked.status != SignalStatus.OPEN:
            raise ValidationError({"signal": "This signal is already resolved."})
        signal.status, signal.outcome, signal.decision = SignalStatus.RESOLVED, outcome, decision
        signal.deviation = deviation if outcome == SignalOutcome.DEVIATION else None
        signal.change_request = change_request if outcome == SignalOutcome.CHANGE_REQUEST else None
        signal.resolved_by, signal.resolved_at = actor, timezone.now()
        signal.save(update_fields=["status", "outcome", "decision", "deviation", "change_request", "resolved_by",
                                   "resolved_at"])
        event_record(actor=actor, event_type=QualityEvent.SIGNAL_RESOLVED, site=signal.site, obj=signal,
                     reason=reason, old={"status": SignalStatus.OPEN},
                     new={"status": SignalStatus.RESOLVED, "outcome": outcome,
                          "deviation": signal.deviation.reference if signal.deviation else None,
                          "change_request": signal.change_request.reference if signal.change_request else None,
                          "decision": decision})
        signature_apply(proof=proof, record=signal, meaning=Meaning.REVIEWED, site=signal.site,
                        reason=f"quality signal resolved: {reason}"[:500])
    return signal
