"""The cost of one batch from its records and a cost model (COST-BATCH). Pure: no Django.

The selector (``costs.selectors.batch_cost``) reads the records into the plain dataclasses below;
:func:`batch_cost_lines` prices them with the model's ``content`` (``costs.content``) and returns one
:class:`CostLine` per record priced, each naming its source record (model label and primary key),
so that an auditor can take any line back to the row it came from and recompute it: every
``amount`` is ``quantity × unit_price`` rounded half-up to cents, and the quantity shown is the one
multiplied (hours to 4 decimals).

Formulas (docs/costs.md):

- labour: per step performed (not skipped), the hours from ``started_at`` to ``performed_at`` × the
  hourly rate of the performer's role at the batch's site (the site's own rate where the model has
  one); per step verified, ``verification_minutes`` / 60 × the verifier's rate;
- materials: per material use, its quantity × the price of its lot (``material_lots``) where the model
  has one, else the price of its material code;
- qc: per QC result entered (a correction is the same test entered again, not a new test: not
  counted), the price of its attribute;
- equipment: the unit's occupation (batch start to end) in hours × its device type's hourly rate;
- facility: the same hours × the site's cleanroom rate;
- review: the model's QA review hours × Control Site QA's rate, QP hours × the QP's rate;
- logistics: per shipment of the order, the price per shipment;
- overhead: the percentage of the sum of every other line.

A figure the model has no price for is a line with ``priced`` false and amount 0, listed as such on
the page: never silently zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
HOUR_PLACES = Decimal("0.0001")

#: The categories, in the order the page shows them (academic costing frameworks' categories).
CATEGORIES: tuple[tuple[str, str], ...] = (
    ("labour", "Labour"), ("materials", "Materials"), ("qc", "Quality control"), ("equipment", "Equipment"),
    ("facility", "Facility"), ("review", "QA and QP review"), ("logistics", "Logistics"), ("overhead", "Overhead"),
)
#: The roles whose rates price the review lines.
QA_ROLE, QP_ROLE = "control_qa", "qp"


@dataclass(frozen=True)
class Source:
    """The record a line comes from: ``manufacturing.StepExecution`` 42."""

    label: str
    pk: int


@dataclass(frozen=True)
class StepWork:
    pk: int
    step_id: str
    hours: Decimal | None  # started_at → performed_at; None when not performed (or skipped)
    performer: str = ""
    performer_role: str | None = None
    verifier: str = ""
    verifier_role: str | None = None


@dataclass(frozen=True)
class MaterialConsumed:
    pk: int
    material_code: str
    quantity: Decimal
    lot_number: str = ""
    lot_pk: int | None = None
    step_id: str = ""


@dataclass(frozen=True)
class QcTest:
    pk: int
    attribute_id: str


@dataclass(frozen=True)
class ShipmentMade:
    pk: int
    leg: str
    order_pk: int


@dataclass(frozen=True)
class BatchRecords:
    """What the cost of a batch is computed from, read from the records."""

    pk: int
    reference: str
    site_code: str
    device_type: str
    unit_hours: Decimal  # the unit's occupation: batch started_at → ended_at (or now, while in progress)
    steps: Sequence[StepWork] = ()
    materials: Sequence[MaterialConsumed] = ()
    qc: Sequence[QcTest] = ()
    shipments: Sequence[ShipmentMade] = ()
    certification_pk: int | None = None
    model_pk: int = 0


@dataclass(frozen=True)
class CostLine:
    category: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal
    source: Source
    priced: bool = True


@dataclass
class CostSheet:
    lines: list[CostLine] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))

    def subtotals(self) -> list[tuple[str, str, Decimal, list[CostLine]]]:
        """(category, label, subtotal, lines) in :data:`CATEGORIES` order, the empty ones left out."""
        out = []
        for key, label in CATEGORIES:
            lines = [line for line in self.lines if line.category == key]
            if lines:
                out.append((key, label, sum((line.amount for line in lines), Decimal("0.00")), lines))
        return out

    @property
    def unpriced(self) -> list[CostLine]:
        return [line for line in self.lines if not line.priced]


def hours_between(seconds: float | Decimal) -> Decimal:
    """Seconds as hours, to 4 decimals (never negative)."""
    return max(Decimal(0), (Decimal(str(seconds)) / 3600).quantize(HOUR_PLACES, ROUND_HALF_UP))


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def _price(table: Mapping[str, Any] | None, key: str | None) -> Decimal | None:
    if not table or key is None or key not in table:
        return None
    return Decimal(str(table[key]))


def material_price(content: Mapping[str, Any], code: str, lot_number: str) -> tuple[Decimal | None, str]:
    """The price of a unit of the lot, and how it was found: the lot's own price (``material_lots``) where
    the model has one (said on the line), else its material's."""
    lot_price = _price((content.get("material_lots") or {}).get(code), lot_number)
    if lot_price is not None:
        return lot_price, " (the lot's price)"
    return _price(content.get("materials"), code), ""


def _line(category: str, description: str, quantity: Decimal, unit: str, price: Decimal | None,
          source: Source) -> CostLine:
    if price is None:
        return CostLine(category, f"{description} — no price in the cost model", quantity, unit, Decimal(0),
                        Decimal("0.00"), source, priced=False)
    return CostLine(category, description, quantity, unit, price, money(quantity * price), source)


def hourly_rate(content: Mapping[str, Any], role: str | None, site_code: str) -> Decimal | None:
    """The rate of ``role`` at the site: the site's own where the model has one, else the general one."""
    labour = content.get("labour", {})
    site_rates = labour.get("site_hourly_rates", {}).get(site_code, {})
    if role is not None and role in site_rates:
        return Decimal(str(site_rates[role]))
    return _price(labour.get("hourly_rates"), role)


@dataclass(frozen=True)
class BatchRates:
    """The prices of a batch's own lines at a site for a device type, looked up once (None: unpriced)."""

    equipment_hourly: Decimal | None
    facility_hourly: Decimal | None
    verification_hours: Decimal | None  # None: the model does not count verifications
    qa_hours: Decimal | None  # None: the model has no QA review line
    qa_rate: Decimal | None
    qp_hours: Decimal | None
    qp_rate: Decimal | None
    per_shipment: Decimal | None
    overhead_percent: Decimal | None


def batch_rates(content: Mapping[str, Any], site_code: str, device_type: str) -> BatchRates:
    """The model's prices for a batch at ``site_code`` on a ``device_type`` unit (docs/costs.md)."""
    facility = content.get("facility", {})
    cleanroom = _price(facility.get("site_hourly"), site_code)
    verification = content.get("labour", {}).get("verification_minutes")
    review = content.get("review", {})
    return BatchRates(
        equipment_hourly=_price(content.get("equipment", {}).get("hourly"), device_type),
        facility_hourly=cleanroom if cleanroom is not None else _price(facility, "hourly"),
        verification_hours=((Decimal(str(verification)) / 60).quantize(HOUR_PLACES, ROUND_HALF_UP)
                            if verification is not None else None),
        qa_hours=Decimal(str(review["qa_hours"])) if "qa_hours" in review else None,
        qa_rate=hourly_rate(content, QA_ROLE, site_code),
        qp_hours=Decimal(str(review["qp_hours"])) if "qp_hours" in review else None,
        qp_rate=hourly_rate(content, QP_ROLE, site_code),
        per_shipment=_price(content.get("logistics"), "per_shipment"),
        overhead_percent=_price(content.get("overhead"), "percent"))


def batch_cost_lines(records: BatchRecords, content: Mapping[str, Any]) -> CostSheet:
    """Price the records with the model's content: the lines in category order, then by record."""
    sheet = CostSheet()
    add = sheet.lines.append
    site = records.site_code
    rates = batch_rates(content, site, records.device_type)
    batch_source = Source("manufacturing.Batch", records.pk)
    for step in records.steps:
        source = Source("manufacturing.StepExecution", step.pk)
        if step.hours is not None:
            role = step.performer_role
            who = f"{step.performer or '?'} ({role or 'no role at the site'})"
            add(_line("labour", f"Step {step.step_id}: performed by {who}", step.hours, "h",
                      hourly_rate(content, role, site), source))
        if step.verifier and rates.verification_hours is not None:
            role = step.verifier_role
            add(_line("labour", f"Step {step.step_id}: verified by {step.verifier} ({role or 'no role at the site'})",
                      rates.verification_hours, "h", hourly_rate(content, role, site), source))
    for use in records.materials:
        price, basis = material_price(content, use.material_code, use.lot_number)
        add(_line("materials", f"{use.material_code} lot {use.lot_number} at step {use.step_id}{basis}",
                  use.quantity, "unit", price, Source("manufacturing.MaterialUse", use.pk)))
    tests = content.get("qc_tests")
    for test in records.qc:
        add(_line("qc", f"QC test {test.attribute_id}", Decimal(1), "test", _price(tests, test.attribute_id),
                  Source("manufacturing.QcResult", test.pk)))
    add(_line("equipment", f"Unit occupation ({records.device_type})", records.unit_hours, "h",
              rates.equipment_hourly, batch_source))
    add(_line("facility", f"Cleanroom at {site} during the batch", records.unit_hours, "h", rates.facility_hourly,
              batch_source))
    if rates.qa_hours is not None:
        add(_line("review", "Control Site QA review of the batch", rates.qa_hours, "h", rates.qa_rate, batch_source))
    if rates.qp_hours is not None:
        certified = records.certification_pk
        add(_line("review", "QP certification" + ("" if certified is not None else " (not yet certified)"),
                  rates.qp_hours, "h", rates.qp_rate,
                  Source("release.Certification", certified) if certified is not None else batch_source))
    for shipment in records.shipments:
        add(_line("logistics", f"Shipment: {shipment.leg.replace('_', ' ')}", Decimal(1), "shipment",
                  rates.per_shipment, Source("custody.Shipment", shipment.pk)))
    percent = rates.overhead_percent
    if percent is not None:
        base = sheet.total
        add(CostLine("overhead", f"Overhead {percent.normalize():f} % of {base} EUR", base, "EUR",
                     percent / 100, money(base * percent / 100), Source("costs.CostModel", records.model_pk)))
    return sheet


# --- the patient's clinical episode -----------------------------------------------------------------------


@dataclass(frozen=True)
class ClinicalEvent:
    """One event of the patient's episode that the records hold: an apheresis (a collection), an infusion (its
    hand-off; the lymphodepletion before it is counted with it, POCare recording the infusion only), a
    follow-up visit done (``mode``: in person, by phone, by questionnaire)."""

    kind: str  # apheresis | infusion | visit
    pk: int
    label: str
    mode: str = ""


#: The record each kind of event comes from.
CLINICAL_SOURCES = {"apheresis": "custody.Collection", "infusion": "custody.Handoff", "visit": "patients.Visit"}


def clinical_lines(events: Sequence[tuple[ClinicalEvent, Mapping[str, Any] | None, int]]) -> list[CostLine]:
    """The lines of a patient's clinical episode: each event with the content of the version that prices it
    (``None``: no version in force on its day: unpriced) and that version's pk. An infusion adds a second
    line, the lymphodepletion (conditioning) that precedes it."""
    out = []
    for event, content, _model_pk in events:
        clinical = (content or {}).get("clinical") or {}
        source = Source(CLINICAL_SOURCES[event.kind], event.pk)
        if event.kind == "apheresis":
            out.append(_line("clinical", "Apheresis (the collection)", Decimal(1), "procedure",
                             _price(clinical, "apheresis"), source))
        elif event.kind == "infusion":
            out.append(_line("clinical", f"Lymphodepletion before the infusion ({event.label})", Decimal(1),
                             "course", _price(clinical, "lymphodepletion"), source))
            out.append(_line("clinical", f"Infusion: {event.label}", Decimal(1), "infusion",
                             _price(clinical, "infusion"), source))
        else:
            out.append(_line("clinical", f"Follow-up visit {event.label} ({event.mode.replace('_', ' ') or '?'})",
                             Decimal(1), "visit", _price(clinical.get("visit"), event.mode), source))
    return out
