"""Reads of the costs app (COST-BATCH): the cost model's versions, the version effective on a day, and
the cost of a batch from its records, in a fixed number of queries whatever the batch's size.

The cost of a batch reads, once each: the batch with its site, unit and certification; the cost
model (when not given); the steps with who performed and verified them; those people's roles at
the batch's site; the material uses with their lots; the QC results; the order's shipments. Then
``compute.batch_cost_lines`` prices them (pure, docs/costs.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from pocare.accounts import selectors as access
from pocare.accounts.models import Membership
from pocare.accounts.roles import Perm
from pocare.costs import compute
from pocare.costs.events import CostsEvent
from pocare.costs.models import CostModel, CostModelStatus, CostReport
from pocare.custody.models import Shipment
from pocare.ledger.models import Event, Signature
from pocare.ledger.verify import signature_statuses
from pocare.manufacturing.models import (
    Batch,
    BatchStatus,
    MaterialLot,
    MaterialUse,
    QcResult,
    StepExecution,
    StepStatus,
)
from pocare.supply.models import PurchaseDelivery

#: The statuses of a version that prices batches (a superseded one still prices those started before
#: its successor took effect).
IN_FORCE = (CostModelStatus.APPROVED, CostModelStatus.SUPERSEDED)


@dataclass
class BatchCost:
    """The cost of one batch: the records read, the model used and the priced lines."""

    batch: Batch
    model: CostModel
    records: compute.BatchRecords
    sheet: compute.CostSheet
    in_progress: bool
    as_of: dt.datetime


def batches_visible(user: Any) -> QuerySet[Batch]:
    """The batches whose cost the person may read: ``costs.view`` held at the batch's site."""
    if not access.has_perm(user, Perm.COSTS_VIEW):
        return Batch.objects.none()
    sites = access.sites_with_perm(user, Perm.COSTS_VIEW)
    found = Batch.objects.all()
    return found if sites is None else found.filter(site_id__in=sites)


def batch_for(user: Any, reference: str) -> Batch:
    """The batch ``reference`` if the person may read its cost; otherwise ``Batch.DoesNotExist`` (a 404)."""
    return batches_visible(user).get(reference=reference)


def models_listed() -> QuerySet[CostModel]:
    return CostModel.objects.select_related("created_by", "approved_by").order_by("-number")


#: The lots the cost model page lists for pricing: received in these last days, at most this many, newest first.
LOTS_RECEIVED_DAYS, LOTS_LISTED = 90, 100


@dataclass(frozen=True)
class LotPrice:
    lot: MaterialLot
    price: Decimal | None  # per unit of the lot; None: the model prices neither the lot nor its material
    own: bool  # the lot's own price (``material_lots``), not its material's
    invoice: Decimal | None = None  # the invoice price of a unit stated when it was delivered against a purchase

    @property
    def differs(self) -> bool:
        """The invoice states a price of a unit other than the one the model gives the lot."""
        return self.invoice is not None and self.invoice != self.price


def lots_received_priced(model: CostModel | None, *, now: dt.datetime | None = None) -> list[LotPrice]:
    """The lots received at any site in the last :data:`LOTS_RECEIVED_DAYS` days (at most :data:`LOTS_LISTED`,
    newest first) with the price ``model`` gives a unit of each and, for a lot delivered against a purchase
    request with its invoice price, that price (the latest delivery's): what Control Site finance checks before
    drafting lot prices (``material_lots``). Two queries."""
    since = (now or timezone.now()) - dt.timedelta(days=LOTS_RECEIVED_DAYS)
    lots = list(MaterialLot.objects.filter(received_at__gte=since).select_related("site")
                .order_by("-received_at", "-pk")[:LOTS_LISTED])
    invoices = dict(PurchaseDelivery.objects.filter(lot__in=lots, unit_price__isnull=False)
                    .order_by("received_at", "pk").values_list("lot_id", "unit_price"))  # the latest wins
    out = []
    for lot in lots:
        price, basis = compute.material_price(model.content, lot.material_code, lot.lot_number) if model else (None, "")
        out.append(LotPrice(lot, price, bool(basis), invoices.get(lot.pk)))
    return out


def content_with_invoice_prices(content: dict[str, Any], lots: list[LotPrice]) -> tuple[dict[str, Any], int]:
    """``content`` with each listed lot whose invoice price differs from the model's priced at its invoice price
    (``material_lots``), and how many such lots: the draft Control Site finance starts from, to check and sign."""
    proposed = {**content, "material_lots": {code: dict(prices) for code, prices in
                                             (content.get("material_lots") or {}).items()}}
    added = 0
    for p in lots:
        if p.differs:
            # As the model keeps a price: decimal text, without trailing zeros (docs/costs.md).
            proposed["material_lots"].setdefault(p.lot.material_code, {})[p.lot.lot_number] = \
                f"{p.invoice.normalize():f}"  # type: ignore[union-attr]
            added += 1
    if not proposed["material_lots"]:
        proposed.pop("material_lots")
    return proposed, added


def signatures_of(records: list[Any]) -> dict[int, list[tuple[Signature, bool, str]]]:
    """The signatures of each record (cost model versions, cost reports: one model), by its pk, with
    whether each still holds: two queries."""
    if not records:
        return {}
    label = type(records[0])._meta.label
    found = list(Signature.objects.filter(record_type=label, record_id__in=[str(r.pk) for r in records])
                 .select_related("event").order_by("signed_at", "pk"))
    statuses = signature_statuses(found) if found else {}
    out: dict[int, list[tuple[Signature, bool, str]]] = {r.pk: [] for r in records}
    for signature in found:
        valid, why = statuses[signature.pk]
        out[int(signature.record_id)].append((signature, valid, why))
    return out


def reports_visible(user: Any) -> QuerySet[CostReport]:
    """The signed cost reports the person may read: ``costs.view`` at the report's site (a network report:
    a Control Site role)."""
    held = access.sites_with_perm(user, Perm.COSTS_VIEW)
    found = CostReport.objects.select_related("site", "created_by")
    return found if held is None else found.filter(site_id__in=held)


def reports_listed(user: Any) -> QuerySet[CostReport]:
    """:func:`reports_visible` for a list: each report's count of batches and total (``batch_count``,
    ``total_text``) read out of its figures by the database, the figures themselves (thousands of batch rows
    each) left unread."""
    return (reports_visible(user).defer("figures")
            .annotate(batch_count=KeyTextTransform("batches", "figures"),
                      total_text=KeyTextTransform("total", "figures")))


def model_effective(on: dt.date) -> CostModel | None:
    """The version that prices a batch started on ``on``: of the versions approved (now or before),
    the newest whose ``effective_from`` is on or before that day."""
    return (CostModel.objects.filter(status__in=IN_FORCE, effective_from__lte=on)
            .order_by("-number").first())


def _role_at(memberships: list[Any], user_id: int | None, when: dt.datetime | None,
             content: dict[str, Any], site_code: str) -> str | None:
    """The role the person held at the batch's site at ``when`` (a role revoked later still counts);
    of several, the one the model rates highest (then by name), so that the choice is reproducible."""
    if user_id is None or when is None:
        return None
    held = sorted({m["role"] for m in memberships
                   if m["user_id"] == user_id and m["granted_at"] <= when
                   and (m["valid_until"] is None or when < m["valid_until"])
                   and (m["revoked_at"] is None or when < m["revoked_at"])})
    if not held:
        return None

    def rated(role: str) -> tuple[Decimal, str]:
        rate = compute.hourly_rate(content, role, site_code)
        return (rate if rate is not None else Decimal(-1), role)

    chosen: str = max(held, key=rated)
    return chosen


def records_many(batches: list[Batch], models: dict[int, CostModel], *, now: dt.datetime | None = None
                 ) -> dict[int, compute.BatchRecords]:
    """The records of many batches as :class:`compute.BatchRecords`, by batch pk: five queries whatever
    their number (steps, people's roles at the batches' sites, material uses, QC results, shipments).
    ``batches`` come with their site, unit and certification loaded; ``models`` names each batch's
    cost model by batch pk (the role of a person is chosen by the rates of that model)."""
    now = now or timezone.now()
    ids = [b.pk for b in batches]
    steps: dict[int, list[Any]] = {pk: [] for pk in ids}
    for row in (StepExecution.objects.filter(batch_id__in=ids).order_by("batch_id", "position")
                .values("pk", "batch_id", "step_id", "status", "started_at", "performed_at", "verified_at",
                        "performed_by_id", "performed_by__printed_name", "performed_by__username",
                        "verified_by_id", "verified_by__printed_name", "verified_by__username")):
        steps[row["batch_id"]].append(row)
    people = {s[k] for rows in steps.values() for s in rows for k in ("performed_by_id", "verified_by_id")}
    memberships: dict[int, list[Any]] = {}
    for m in (Membership.objects.filter(site_id__in={b.site_id for b in batches}, user_id__in=people - {None})
              .values("site_id", "user_id", "role", "granted_at", "valid_until", "revoked_at")):
        memberships.setdefault(m["site_id"], []).append(m)
    uses: dict[int, list[compute.MaterialConsumed]] = {pk: [] for pk in ids}
    for u in (MaterialUse.objects.filter(step__batch_id__in=ids).order_by("step__batch_id", "step__position", "pk")
              .values("pk", "material_code", "quantity", "lot_id", "lot__lot_number", "step__step_id",
                      "step__batch_id")):
        uses[u["step__batch_id"]].append(compute.MaterialConsumed(
            pk=u["pk"], material_code=u["material_code"], quantity=u["quantity"], lot_number=u["lot__lot_number"],
            lot_pk=u["lot_id"], step_id=u["step__step_id"]))
    qc: dict[int, list[compute.QcTest]] = {pk: [] for pk in ids}
    for r in (QcResult.objects.filter(batch_id__in=ids, corrects__isnull=True)
              .order_by("batch_id", "attribute_id", "pk").values("pk", "batch_id", "attribute_id")):
        qc[r["batch_id"]].append(compute.QcTest(pk=r["pk"], attribute_id=r["attribute_id"]))
    shipments: dict[int, list[compute.ShipmentMade]] = {}
    for sh in (Shipment.objects.filter(order_id__in={b.order_id for b in batches}).order_by("dispatched_at", "pk")
               .values("pk", "leg", "order_id")):
        shipments.setdefault(sh["order_id"], []).append(compute.ShipmentMade(pk=sh["pk"], leg=sh["leg"],
                                                                              order_pk=sh["order_id"]))
    out = {}
    for batch in batches:
        model = models[batch.pk]
        content, site_code = model.content, batch.site.code
        held = memberships.get(batch.site_id, [])
        work = []
        for s in steps[batch.pk]:
            done_at = s["performed_at"] if s["status"] != StepStatus.SKIPPED else None
            hours = compute.hours_between((done_at - s["started_at"]).total_seconds()) if done_at is not None else None
            work.append(compute.StepWork(
                pk=s["pk"], step_id=s["step_id"], hours=hours,
                performer=s["performed_by__printed_name"] or s["performed_by__username"] or "",
                performer_role=_role_at(held, s["performed_by_id"], s["performed_at"], content, site_code),
                verifier=s["verified_by__printed_name"] or s["verified_by__username"] or "",
                verifier_role=_role_at(held, s["verified_by_id"], s["verified_at"], content, site_code)))
        certification = getattr(batch, "certification", None)
        out[batch.pk] = compute.BatchRecords(
            pk=batch.pk, reference=batch.reference, site_code=site_code, device_type=batch.unit.device_type,
            unit_hours=compute.hours_between(((batch.ended_at or now) - batch.started_at).total_seconds()),
            steps=work, materials=uses[batch.pk], qc=qc[batch.pk], shipments=shipments.get(batch.order_id, []),
            certification_pk=certification.pk if certification is not None else None, model_pk=model.pk)
    return out


def batch_records(batch: Batch, model: CostModel) -> tuple[compute.BatchRecords, Batch, dt.datetime]:
    """The records of the batch as :class:`compute.BatchRecords`: six queries."""
    batch = Batch.objects.select_related("site", "unit", "certification").get(pk=batch.pk)
    now = timezone.now()
    return records_many([batch], {batch.pk: model}, now=now)[batch.pk], batch, now


def batch_cost(batch: Batch, model: CostModel | None = None) -> BatchCost | None:
    """The cost of ``batch`` priced with ``model`` (by default the version effective on the day the
    batch started, UTC); ``None`` when no version was in force then. Seven queries at most."""
    if model is None:
        model = model_effective(batch.started_at.astimezone(dt.UTC).date())
        if model is None:
            return None
    records, batch, now = batch_records(batch, model)
    sheet = compute.batch_cost_lines(records, model.content)
    in_progress = batch.status == BatchStatus.IN_PROGRESS
    return BatchCost(batch=batch, model=model, records=records, sheet=sheet, in_progress=in_progress,
                     as_of=batch.ended_at or now)


def last_check(cost_report: CostReport) -> Event | None:
    """The latest check of a signed report against the records (``costs.report_checked``), by the events'
    object index; ``None`` while it has not been checked since it was signed."""
    return (Event.objects.filter(object_type=CostReport._meta.label, object_id=str(cost_report.pk),
                                 event_type=CostsEvent.REPORT_CHECKED).order_by("-pk").first())
