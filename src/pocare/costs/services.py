"""Changes to the cost model (COST-BATCH, CH4-9): a version drafted, then approved with Control Site QA's
signature, superseding the version approved before. A version is never edited; a change is a new draft.

Each function is keyword-only, checks the actor's permission (``costs.manage``), runs in one
transaction and writes its ledger event there; the signature is authenticated before the transaction
(a wrong password is recorded and nothing else is) and applied inside it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from pocare.accounts.roles import Perm, Role
from pocare.accounts.services import require_perm
from pocare.core import bounds
from pocare.core.checks import text_checked
from pocare.costs import report
from pocare.costs.content import ContentRefused, content_checked
from pocare.costs.events import CostsEvent
from pocare.costs.models import CostModel, CostModelStatus, CostReport
from pocare.ledger.canonical import content_hash
from pocare.ledger.models import Event, Meaning
from pocare.ledger.services import event_record, reason_required
from pocare.ledger.signing import SigningCredentials, signature_apply, signing_authenticate
from pocare.manufacturing.models import Batch
from pocare.network.models import DeviceType, Site

if TYPE_CHECKING:
    from pocare.accounts.models import User

#: The largest content accepted as text (a model with a price for every material is a few KB).
MAX_CONTENT_CHARS = 200_000


def _reason(reason: Any) -> str:
    return reason_required(text_checked(reason, "reason", "reason", 2000))


def content_parsed(content: Any) -> dict[str, Any]:
    """The content a person gave (a mapping, or JSON text) checked and normalized, or a
    ``ValidationError`` on ``content`` naming the path refused (``materials.TS520: must be …``)."""
    if isinstance(content, str | bytes):
        if len(content) > MAX_CONTENT_CHARS:
            raise ValidationError({"content": f"The cost model has at most {MAX_CONTENT_CHARS:,} characters."})
        try:
            content = bounds.loads_json(content)
        except bounds.InputRefused as exc:
            raise ValidationError({"content": f"{exc.field}: {exc.message}."}) from None
        except ValueError:
            raise ValidationError({"content": "The cost model is not JSON."}) from None
    try:
        return content_checked(content, roles=Role.values, device_types=DeviceType.values)
    except ContentRefused as exc:
        raise ValidationError({"content": f"{exc.path}: {exc.message}."}) from None


def _effective_from(value: Any) -> dt.date:
    if value is None:
        return timezone.now().date()
    if isinstance(value, str):
        if problem := bounds.text_problem(value) or bounds.iso_text_problem(value):
            raise ValidationError({"effective_from": f"The day it takes effect: {problem}."})
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError({"effective_from": "Give the day it takes effect as YYYY-MM-DD."}) from None
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise ValidationError({"effective_from": "Give the day it takes effect as YYYY-MM-DD."})
    if problem := bounds.datetime_problem(value):
        raise ValidationError({"effective_from": f"The day it takes effect: {problem}."})
    return value


def cost_model_draft(*, actor: User, content: Mapping[str, Any] | str, reason: str,
                     effective_from: dt.date | str | None = None) -> CostModel:
    """Draft the next version of the cost model (number 1, 2, …), effective from ``effective_from``
    (today, UTC, by default) once approved."""
    require_perm(actor, Perm.COSTS_MANAGE)
    reason = _reason(reason)
    checked = content_parsed(content)
    effective = _effective_from(effective_from)
    with transaction.atomic():
        # The highest number under a lock of the table's newest row: two drafts at once get 1 and 2
        # (the unique constraint refuses a race the lock does not serialize, on an empty table).
        newest = CostModel.objects.select_for_update().order_by("-number").first()
        number = (newest.number if newest is not None else 0) + 1
        model = CostModel.objects.create(number=number, effective_from=effective, content=checked,
                                         content_hash=content_hash(checked), reason=reason, created_by=actor,
                                         created_at=timezone.now())
        event_record(actor=actor, event_type=CostsEvent.MODEL_DRAFTED, obj=model, reason=reason,
                     new={"number": number, "effective_from": effective.isoformat(), "content": checked,
                          "content_hash": model.content_hash})
    return model


def cost_model_approve(*, actor: User, model: CostModel, reason: str, credentials: SigningCredentials) -> CostModel:
    """Approve a draft, signed by Control Site QA (meaning *approved*, with the reason); the version
    approved before becomes superseded. A version takes effect no earlier than the one it supersedes,
    so that the version effective on a day is always the newest approved by then."""
    require_perm(actor, Perm.COSTS_MANAGE)
    reason = _reason(reason)
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        locked = CostModel.objects.select_for_update().get(pk=model.pk)
        if locked.status != CostModelStatus.DRAFT:
            raise ValidationError({"model": f"{locked} is {locked.get_status_display().lower()}, not a draft."})
        if content_hash(locked.content) != locked.content_hash:
            raise ValidationError({"model": f"{locked}'s content no longer matches its hash; draft it again."})
        previous = CostModel.objects.select_for_update().filter(status=CostModelStatus.APPROVED).first()
        newer = CostModel.objects.filter(status__in=[CostModelStatus.APPROVED, CostModelStatus.SUPERSEDED],
                                         number__gt=locked.number).aggregate(n=Max("number"))["n"]
        if newer is not None:
            raise ValidationError({"model": f"Version {newer} was approved after this draft; draft it again."})
        if previous is not None and locked.effective_from < previous.effective_from:
            raise ValidationError({"effective_from": f"{locked} would take effect on {locked.effective_from}, before "
                                                     f"{previous} ({previous.effective_from}) that it supersedes."})
        now = timezone.now()
        if previous is not None:
            previous.status, previous.superseded_at = CostModelStatus.SUPERSEDED, now
            previous.save(update_fields=["status", "superseded_at"])
            event_record(actor=actor, event_type=CostsEvent.MODEL_APPROVED, obj=previous, reason=reason,
                         old={"status": CostModelStatus.APPROVED},
                         new={"status": CostModelStatus.SUPERSEDED, "superseded_by": locked.number})
        locked.status, locked.approved_by, locked.approved_at = CostModelStatus.APPROVED, actor, now
        locked.save(update_fields=["status", "approved_by", "approved_at"])
        event_record(actor=actor, event_type=CostsEvent.MODEL_APPROVED, obj=locked, reason=reason,
                     old={"status": CostModelStatus.DRAFT},
                     new={"status": CostModelStatus.APPROVED, "effective_from": locked.effective_from.isoformat(),
                          "content_hash": locked.content_hash,
                          "supersedes": previous.number if previous is not None else None})
        signature_apply(proof=proof, record=locked, site=None, reason=reason, meaning=Meaning.APPROVED)
    return locked


def cost_report_sign(*, actor: User, site: Site | None, start: dt.date, end: dt.date, reason: str,
                     credentials: SigningCredentials) -> CostReport:
    """Compute the cost report of ``site`` (the network for ``None``) for the period from the records and
    sign it (Control Site QA, meaning *approved*, with the reason): the figures signed are the ones
    stored. Refused for a period out of bounds, more than ``report.MAX_BATCHES`` batches, or none."""
    require_perm(actor, Perm.COSTS_MANAGE)
    reason = _reason(reason)
    report.period_checked(start, end, today=timezone.now().date())
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        batches = report.batches_in(Batch.objects.all(), site, start, end)
        count = batches.count()
        if count == 0:
            raise ValidationError({"end": "No batch ended at this site in this period: there is nothing to sign."})
        if count > report.MAX_BATCHES:
            raise ValidationError({"end": f"{count:,} batches ended in this period; a signed report holds at most "
                                          f"{report.MAX_BATCHES:,}. Choose a site or a shorter period."})
        figures = report.figures_for(batches, site=site, start=start, end=end)
        found = CostReport.objects.create(site=site, period_start=start, period_end=end, figures=figures,
                                          figures_hash=report.figures_hash(figures), created_by=actor,
                                          created_at=timezone.now())
        event_record(actor=actor, event_type=CostsEvent.REPORT_SIGNED, obj=found, reason=reason,
                     new={"site": site.code if site is not None else None, "start": start.isoformat(),
                          "end": end.isoformat(), "batches": figures["batches"], "total": figures["total"],
                          "figures_hash": found.figures_hash})
        signature_apply(proof=proof, record=found, site=site, reason=reason, meaning=Meaning.APPROVED)
    return found


def cost_report_exported(*, actor: User, cost_report: CostReport, fmt: str) -> None:
    """A signed report left the building as CSV or PDF: a ledger event names who took which."""
    require_perm(actor, Perm.COSTS_VIEW, site=cost_report.site)
    with transaction.atomic():
        event_record(actor=actor, event_type=CostsEvent.REPORT_EXPORTED, obj=cost_report,
                     new={"format": fmt, "figures_hash": cost_report.figures_hash})


def cost_report_checked(*, actor: User, cost_report: CostReport, now: dict[str, Any]) -> Event:
    """Record what the records give today for a signed report's site and period (``now``, from
    ``report.figures_for``): whether they agree with the signed figures (the same hash), the batches and total
    today and the first batches whose lines differ. The check is part of the trail an auditor reconciles."""
    require_perm(actor, Perm.COSTS_VIEW, site=cost_report.site)
    differ = [r["reference"] for r, s in zip(now["rows"], cost_report.figures["rows"], strict=False) if r != s]
    if len(now["rows"]) != len(cost_report.figures["rows"]) and not differ:
        longer = now["rows"] if len(now["rows"]) > len(cost_report.figures["rows"]) else cost_report.figures["rows"]
        differ = [longer[min(len(now["rows"]), len(cost_report.figures["rows"]))]["reference"]]
    with transaction.atomic():
        return event_record(actor=actor, event_type=CostsEvent.REPORT_CHECKED, obj=cost_report,
                            new={"agrees": report.figures_hash(now) == cost_report.figures_hash,
                                 "batches": now["batches"], "total": now["total"], "differ": differ[:20]})
