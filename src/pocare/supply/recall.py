"""Recall (SUP-RECALL, ATMP-TRACE): from a supplier's lot to every batch, product and patient it reached,
and back from a patient to every lot in contact with their cells; the recall that holds it.

A supplier's lot number is received at many sites (one ``MaterialLot`` per site), so a recall names
the material and the lot number, and holds every lot of the network that carries them. While it is
open, supply answers the questions the apps below ask (``answers``): the lot is not released, issued
nor used at a step; a batch that used it is not certified (a failing line on the release checklist);
its product is not dispatched to the hospital. Closing the recall (signed, with its outcome) lifts
the holds; what happens to each batch is then the QP's decision, as for any other.

The traces are a fixed number of queries whatever the size of the network (``benchmarks/supply.py``):
the lots by (material, lot number) on their index, their uses with the batch, order, certification
and treating site joined, the dispatch and infusion hand-offs of those orders, and the stock.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Min, Q, Sum
from django.urls import reverse
from django.utils import timezone

from pocare.accounts.roles import NETWORK_ROLES, Perm, Role
from pocare.accounts.selectors import sites_with_perm
from pocare.accounts.services import require_perm
from pocare.core.checks import text_checked
from pocare.custody.models import Handoff, HandoffKind, HandoffOutcome, TherapyOrder
from pocare.ledger.models import Meaning
from pocare.ledger.services import event_record, reason_required
from pocare.ledger.signing import SigningCredentials, signature_apply, signing_authenticate
from pocare.manufacturing.models import Batch, MaterialLot, MaterialUse
from pocare.network.models import Site
from pocare.quality.services import notice_send
from pocare.supply.events import SupplyEvent
from pocare.supply.models import Recall, RecallStatus, StockMovement, Transfer

if TYPE_CHECKING:
    from pocare.accounts.models import User

#: Who hears of a recall at the Control Site.
RECALL_NETWORK_ROLES = (Role.CONTROL_QA, Role.QP)
assert set(RECALL_NETWORK_ROLES) <= NETWORK_ROLES


# --- what is held ----------------------------------------------------------------------------------


def open_recalls() -> dict[tuple[str, str], Recall]:
    """The open recalls by (material code, lot number): one query, few rows."""
    return {(r.material_code, r.lot_number): r for r in Recall.objects.filter(status=RecallStatus.OPEN)}


def lot_recall(lot: MaterialLot) -> Recall | None:
    """The open recall holding ``lot``, if any (one query on the recall's index)."""
    return Recall.objects.filter(status=RecallStatus.OPEN, material_code=lot.material_code,
                                 lot_number=lot.lot_number).first()


def recalled_lots(keys: Iterable[tuple[str, str]], prefix: str = "lot__") -> Q | None:
    """A filter on the lots carrying these (material code, lot number) pairs, through ``prefix``
    (``None``: no pair, nothing to match)."""
    match = None
    for material_code, lot_number in keys:
        one = Q(**{f"{prefix}material_code": material_code, f"{prefix}lot_number": lot_number})
        match = one if match is None else match | one
    return match


def recall_hold_text(recall: Recall) -> str:
    return (f"{recall.material_code} lot {recall.lot_number} is recalled ({recall.reference}, "
            f"{recall.opened_at:%Y-%m-%d}): {recall.reason}")


def batches_recall_holds(batch_ids: Iterable[int]) -> dict[int, list[str]]:
    """For each batch that used a lot under an open recall, why it is held (two queries at most,
    however many batches: the release queue asks for its whole page at once)."""
    ids = list(batch_ids)
    recalls = open_recalls() if ids else {}
    match = recalled_lots(recalls)
    if match is None:
        return {}
    uses = (MaterialUse.objects.filter(match, step__batch_id__in=ids)
            .values_list("step__batch_id", "lot__material_code", "lot__lot_number", "step__step_id")
            .order_by("step__batch_id", "step__position", "pk"))
    out: dict[int, list[str]] = defaultdict(list)
    for batch_id, material_code, lot_number, step_id in uses:
        text = f"Step {step_id}: {recall_hold_text(recalls[(material_code, lot_number)])}"
        if text not in out[batch_id]:
            out[batch_id].append(text)
    return dict(out)


# --- the traces ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LotHeld:
    """One site's lot of the recalled material and lot number, with what is left of it where."""

    lot_id: int
    site: str
    supplier: str
    expiry_date: dt.date
    status: str
    stock: tuple[tuple[str, Decimal, str], ...]  # (location code, quantity, unit), non-zero only

    @property
    def in_stock(self) -> bool:
        return any(q > 0 for _, q, _ in self.stock)


@dataclass(frozen=True)
class Reached:
    """One use of a lot at a step, and where the cells it touched went: batch, product, patient."""

    material_code: str
    lot_number: str
    supplier: str
    lot_site: str
    expiry_date: dt.date
    step_id: str
    quantity: Decimal
    used_at: dt.datetime
    batch: str
    batch_site: str
    batch_status: str
    certification: str | None
    coi: str
    recipient: str
    treating_site: str
    order_id: int
    dispatched_at: dt.datetime | None
    infused_at: dt.datetime | None
    recall: str | None = None

    @property
    def stage(self) -> str:
        """Where the product is now, in the words QA and the hospital use."""
        if self.infused_at is not None:
            return "infused"
        if self.dispatched_at is not None:
            return "dispatched to the hospital"
        if self.certification == "released":
            return "certified, not dispatched"
        if self.certification == "rejected":
            return "rejected by the QP"
        if self.batch_status == "completed":
            return "awaiting certification"
        if self.batch_status == "aborted":
            return "aborted"
        return "in manufacture"

    @property
    def held(self) -> bool:
        """Whether an open recall now holds this product (it has not yet reached the patient)."""
        return self.recall is not None and self.infused_at is None and self.dispatched_at is None


@dataclass(frozen=True)
class Trace:
    """A trace as one page and one export show it."""

    title: str
    lots: list[LotHeld]
    reached: list[Reached]
    recalls: list[Recall]
    #: The transfers of the lot between sites (in transit: at neither site's locations).
    transfers: list[Transfer] = field(default_factory=list)

    @property
    def patients(self) -> list[str]:
        return sorted({r.recipient for r in self.reached})

    @property
    def batches(self) -> list[str]:
        return sorted({r.batch for r in self.reached})


_USE_FIELDS = ("lot__material_code", "lot__lot_number", "lot__supplier", "lot__site__code", "lot__expiry_date",
               "step__step_id", "quantity", "recorded_at", "step__batch__reference", "step__batch__site__code",
               "step__batch__status", "step__batch__certification__decision", "step__batch__order__coi",
               "step__batch__order__recipient_id", "step__batch__order__treating_site__code",
               "step__batch__order_id")


def _reached(uses: Any) -> list[Reached]:
    """The uses as rows, with each order's dispatch and infusion (one more query)."""
    rows = list(uses.values_list(*_USE_FIELDS).order_by("step__batch__reference", "step__position", "pk"))
    order_ids = {row[-1] for row in rows}
    handed: dict[tuple[int, str], dt.datetime] = {}
    if order_ids:
        done = (Handoff.objects.filter(order_id__in=order_ids, outcome=HandoffOutcome.COMPLETED,
                                       kind__in=[HandoffKind.DISPATCH_TO_HOSPITAL, HandoffKind.INFUSION])
                .values("order_id", "kind").annotate(first=Min("occurred_at")).order_by())
        handed = {(h["order_id"], h["kind"]): h["first"] for h in done}
    recalls = open_recalls() if rows else {}
    out = []
    for (material_code, lot_number, supplier, lot_site, expiry, step_id, quantity, used_at, batch, batch_site,
         batch_status, decision, coi, recipient, treating, order_id) in rows:
        recall = recalls.get((material_code, lot_number))
        out.append(Reached(material_code, lot_number, supplier, lot_site, expiry, step_id, quantity, used_at, batch,
                           batch_site, batch_status, decision, coi or "", recipient, treating, order_id,
                           handed.get((order_id, HandoffKind.DISPATCH_TO_HOSPITAL)),
                           handed.get((order_id, HandoffKind.INFUSION)),
                           recall.reference if recall is not None else None))
    return out


def _visible(user: Any) -> set[int] | None:
    """The sites whose lots and batches ``user`` may trace (``supply.view``; None: every site)."""
    return sites_with_perm(user, Perm.SUPPLY_VIEW) if user is not None else None


def lot_trace(*, material_code: str, lot_number: str, user: Any = None) -> Trace:
    """Forward: every lot of the network numbered ``lot_number`` of ``material_code``, its stock, and
    every batch, product and patient it reached — at the sites ``user`` may see (``None``: all)."""
    sites = _visible(user)
    lots = MaterialLot.objects.filter(material_code=material_code, lot_number=lot_number)
    uses = MaterialUse.objects.filter(lot__material_code=material_code, lot__lot_number=lot_number)
    if sites is not None:
        lots = lots.filter(site_id__in=sites)
        uses = uses.filter(step__batch__site_id__in=sites)
    found = list(lots.select_related("site").order_by("site__code"))
    stock: dict[int, list[tuple[str, Decimal, str]]] = defaultdict(list)
    if found:
        rows = (StockMovement.objects.filter(lot__in=found).values("lot_id", "location__code", "unit")
                .annotate(total=Sum("quantity")).order_by("lot_id", "location__code"))
        for row in rows:
            if row["total"]:
                stock[row["lot_id"]].append((row["location__code"], row["total"], row["unit"]))
    held = [LotHeld(lot.pk, lot.site.code, lot.supplier, lot.expiry_date, lot.status, tuple(stock[lot.pk]))
            for lot in found]
    recalls = list(Recall.objects.filter(material_code=material_code, lot_number=lot_number))
    moved = Transfer.objects.filter(source_lot__material_code=material_code, source_lot__lot_number=lot_number)
    if sites is not None:
        moved = moved.filter(Q(source__site_id__in=sites) | Q(destination__site_id__in=sites))
    sent = list(moved.select_related("source__site", "destination__site").order_by("-dispatched_at", "-pk"))
    return Trace(f"{material_code} lot {lot_number}", held, _reached(uses), recalls, sent)


def patient_trace(*, identifier: str, user: Any = None) -> Trace:
    """Back: from a patient (the hospital's pseudonym), a chain of identity or a batch reference, to
    every material lot in contact with their cells, at the sites ``user`` may see (``None``: all)."""
    sites = _visible(user)
    # Two lookups, each on its own index (an OR across the batch and its order would scan every batch).
    orders = TherapyOrder.objects.filter(Q(coi=identifier) | Q(recipient_id=identifier)).values("pk")
    batch_ids = (set(Batch.objects.filter(order_id__in=orders).values_list("pk", flat=True))
                 | set(Batch.objects.filter(reference=identifier).values_list("pk", flat=True)))
    if sites is not None:
        batch_ids = set(Batch.objects.filter(pk__in=batch_ids, site_id__in=sites).values_list("pk", flat=True))
    uses = MaterialUse.objects.filter(step__batch_id__in=batch_ids)
    reached = _reached(uses)
    keys = {(r.material_code, r.lot_number) for r in reached}
    recalls = list(Recall.objects.filter(material_code__in={k[0] for k in keys},
                                         lot_number__in={k[1] for k in keys})) if keys else []
    recalls = [r for r in recalls if (r.material_code, r.lot_number) in keys]
    return Trace(identifier, [], reached, recalls)


def recalls_visible(user: Any) -> Any:
    """The recalls ``user`` may read: all for the Control Site; for a site person, those of lots held by
    the sites where they hold ``supply.view`` (another site's recall does not exist for them)."""
    found = Recall.objects.all()
    sites = _visible(user)
    if sites is None:
        return found
    held = MaterialLot.objects.filter(site_id__in=sites)
    return found.filter(material_code__in=held.values("material_code"), lot_number__in=held.values("lot_number"))


# --- opening and closing -----------------------------------------------------------------------------


def _next_reference(year: int) -> str:
    prefix = f"RCL-{year}-"
    last = (Recall.objects.filter(reference__startswith=prefix).order_by("-reference")
            .values_list("reference", flat=True).first())
    return f"{prefix}{(int(last.rsplit('-', 1)[1]) + 1 if last else 1):04d}"


def _notify(recall: Recall, trace: Trace, subject: str, body: str) -> None:
    """QA and the QP; each site holding one of the lots (its materials people); each treating hospital
    of a patient reached (its physicians and navigators, by pseudonym and chain of identity only)."""
    url = reverse("supply:recall", args=[recall.reference])
    holding = Site.objects.filter(code__in={lot.site for lot in trace.lots} | {r.batch_site for r in trace.reached})
    notice_send(subject=subject, body=body, url=url, network_roles=RECALL_NETWORK_ROLES,
                site_perms=[(site, Perm.MATERIALS_MANAGE) for site in holding])
    by_hospital: dict[str, list[Reached]] = defaultdict(list)
    for r in trace.reached:
        by_hospital[r.treating_site].append(r)
    hospitals = {site.code: site for site in Site.objects.filter(code__in=list(by_hospital))}
    for code, reached in sorted(by_hospital.items()):
        patients = "; ".join(sorted({f"{r.recipient} (COI {r.coi}, {r.stage})" for r in reached}))
        order = reached[0]
        notice_send(subject=subject, url=reverse("custody:order", args=[order.order_id]),
                    body=f"{body}\n\nYour patients whose product was made with this lot: {patients}. "
                         f"Control Site QA will contact you about each of them.",
                    site_perms=[(hospitals[code], Perm.PATIENTS_VIEW)])


def recall_open(*, actor: User, material_code: str, lot_number: str, reason: str,
                credentials: SigningCredentials) -> Recall:
    """Recall every lot of the network numbered ``lot_number`` of ``material_code``, signed by Control
    Site QA with its reason: the lots, the unreleased batches that used them and their products are
    held from now on, and QA, the QP, the sites holding the lot and the treating hospitals are told."""
    require_perm(actor, Perm.RECALL)
    material_code = text_checked(material_code, "material_code", "material code", 64)
    lot_number = text_checked(lot_number, "lot_number", "lot number", 60)
    reason = reason_required(text_checked(reason, "reason", "reason", 2000))
    if not MaterialLot.objects.filter(material_code=material_code, lot_number=lot_number).exists():
        raise ValidationError({"lot_number": f"No lot {lot_number} of {material_code} was received anywhere in the "
                                             "network: there is nothing here to recall."})
    if (existing := Recall.objects.filter(status=RecallStatus.OPEN, material_code=material_code,
                                          lot_number=lot_number).first()) is not None:
        raise ValidationError({"lot_number": f"{material_code} lot {lot_number} is already recalled "
                                             f"({existing.reference})."})
    proof = signing_authenticate(actor=actor, credentials=credentials)
    now = timezone.now()
    with transaction.atomic():
        recall = _create(material_code=material_code, lot_number=lot_number, reason=reason, actor=actor, now=now)
        trace = lot_trace(material_code=material_code, lot_number=lot_number)
        event_record(actor=actor, event_type=SupplyEvent.RECALL_OPENED, obj=recall, reason=reason,
                     new={"reference": recall.reference, "material_code": material_code,
                          "lot_number": lot_number, "lots_at": sorted({lot.site for lot in trace.lots}),
                          "batches": trace.batches, "patients": trace.patients})
        signature_apply(proof=proof, record=recall, site=None, reason=reason, meaning=Meaning.APPROVED)
        _notify(recall, trace, f"Recall {recall.reference}: {material_code} lot {lot_number}",
                f"{recall_hold_text(recall)}\n\nHeld: {len(trace.lots)} lot(s) at "
                f"{', '.join(sorted({lot.site for lot in trace.lots}))}; {len(trace.batches)} batch(es) made "
                f"with it: {', '.join(trace.batches) or 'none'}.")
    return recall


def _create(*, material_code: str, lot_number: str, reason: str, actor: User, now: dt.datetime) -> Recall:
    """The recall's row, numbered. Two recalls opened at once may draw the same number: the second tries
    the next one; but a second recall of the same lot is refused (the partial unique constraint: one open
    recall per lot number), and its opener told."""
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return Recall.objects.create(reference=_next_reference(now.year), material_code=material_code,
                                             lot_number=lot_number, reason=reason, opened_by=actor, opened_at=now)
        except IntegrityError:
            if Recall.objects.filter(status=RecallStatus.OPEN, material_code=material_code,
                                     lot_number=lot_number).exists():
                raise ValidationError({"lot_number": f"{material_code} lot {lot_number} was recalled by someone "
                                                     "else at the same moment; see the recalls page."}) from None
    raise ValidationError({"lot_number": "The recall could not be numbered; try again."})


def recall_close(*, actor: User, recall: Recall, outcome: str, credentials: SigningCredentials) -> Recall:
    """Close an open recall, signed, with its outcome (what was destroyed, returned or cleared): its
    holds lift. Each held batch is then the QP's decision, as for any batch."""
    require_perm(actor, Perm.RECALL)
    outcome = reason_required(text_checked(outcome, "outcome", "outcome", 2000))
    proof = signing_authenticate(actor=actor, credentials=credentials)
    with transaction.atomic():
        locked = Recall.objects.select_for_update().get(pk=recall.pk)
        if not locked.is_open:
            raise ValidationError({"outcome": f"{locked.reference} was closed on {locked.closed_at:%Y-%m-%d}."})
        locked.status, locked.closed_by, locked.closed_at, locked.outcome = (RecallStatus.CLOSED, actor,
                                                                             timezone.now(), outcome)
        locked.save(update_fields=["status", "closed_by", "closed_at", "outcome"])
        event_record(actor=actor, event_type=SupplyEvent.RECALL_CLOSED, obj=locked, reason=outcome,
                     old={"status": RecallStatus.OPEN}, new={"status": RecallStatus.CLOSED})
        signature_apply(proof=proof, record=locked, site=None, reason=outcome, meaning=Meaning.APPROVED)
        trace = lot_trace(material_code=locked.material_code, lot_number=locked.lot_number)
        _notify(locked, trace, f"Recall {locked.reference} closed: {locked.material_code} lot {locked.lot_number}",
                f"The recall of {locked.material_code} lot {locked.lot_number} is closed and its holds are lifted. "
                f"Outcome: {outcome}")
    return locked
