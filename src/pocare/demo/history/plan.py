"""The plan of one history batch — plain data, drawn first and written as rows afterwards — and
the figures it is drawn from (DOMAIN.md; *(estimate)* where no published figure exists)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pocare.accounts.models import User
from pocare.manufacturing.models import MaterialLot, StepExecution
from pocare.masterfile import schema
from pocare.network.models import ManufacturingUnit, Site
from pocare.quality.models import Deviation

SYSTEM = "demo-history"
PRODUCT_CODE = "CD19-CART"
#: The sites with history. Porto (OPO) is in qualification: no batches.
SITE_CODES = ("MAD", "LIS", "MUC", "GRO", "MIL", "DUB")
DRIFT_SITE = "GRO"

# --- numbers (DOMAIN.md; *(estimate)* where no published figure exists) ---------------------------

#: Manufacturing failure: UK national panel 2019–23, 3.87 % (Blood Cancer J 2025); causes poor
#: growth, low viability, low T-cell purity (their split is an estimate).
FAILURE_RATE = 0.0387
FAILURE_CAUSES = (("poor-growth", 0.5), ("low-viability", 0.3), ("low-purity", 0.2))  # (estimate)
#: CAR+ (transduction) of the final product: ARI-0001 validation lots 26.0 / 41.9 / 39.7 %
#: (Castella et al. 2019, Table 2), drawn as N(33, 7).
CAR_MEAN, CAR_SD = 33.0, 7.0
#: Groningen's transduction drifts from ~33 % to ~21 % over its last ~4 months.
DRIFT_DAYS, DRIFT_TO = 122, 21.0
#: Fresh infusion versus cryopreservation (estimate; decentralized fresh product: Galapagos 2024).
FRESH_SHARE = 0.6
#: A custody hand-off blocked by a wrong label (estimate: "a handful" over the history).
BLOCKED_HANDOFF_RATE = 0.02
#: A batch whose device log has an alarm (estimate).
ALARM_RATE = 0.06
#: A sterility positive (estimate; rare in closed automated systems).
STERILITY_POSITIVE_RATE = 0.005
#: The cohort dose formulated: ARI-0001 1 × 10^6 CAR+ cells/kg (range 0.4–5, Mol Ther 2021;29:636).
COHORT_DOSE = 1.0
#: Days between a harvest and the next set-up on the same unit (cleaning, changeover, the next
#: patient's apheresis): 2–9, giving ~2 batches per device per month (DOMAIN.md: 2–3, estimate).
TURNAROUND_DAYS = (2, 9)
#: The youngest batch starts this long before ``now``: its QC (sterility 7 days), QP release and a
#: cryopreserved product's infusion are all in the past.
LAST_START_BEFORE_NOW = dt.timedelta(days=35)
CHUNK = 40  # batches per bulk insert round

MATERIALS: dict[str, tuple[str, int, int]] = {
    # code: (supplier, days a lot is in use at a site, shelf life in days) — (estimate)
    "SYR-5ML": ("BD", 180, 1095), "TS520": ("Miltenyi Biotec", 120, 730),
    "CD4-REAG": ("Miltenyi Biotec", 90, 540), "CD8-REAG": ("Miltenyi Biotec", 90, 540),
    "PBS-EDTA": ("Miltenyi Biotec", 120, 730), "TRANSACT": ("Miltenyi Biotec", 90, 540),
    "TEXMACS": ("Miltenyi Biotec", 90, 365), "IL7": ("Miltenyi Biotec", 120, 730),
    "IL15": ("Miltenyi Biotec", 120, 730), "LV-CAR19": ("Vector manufacturer (qualified CDMO)", 60, 365),
    "BACT-AER": ("bioMérieux", 120, 365), "BACT-ANA": ("bioMérieux", 120, 365),
    "BAG-INF": ("Macopharma", 180, 1095), "PLASMALYTE": ("Baxter", 120, 730),
}
DEFAULT_MATERIAL = ("Qualified supplier", 120, 730)


# --- the plan of one batch (plain data; write.py builds the rows from it) -----------------------


@dataclass
class DevPlan:
    kind: str
    title: str
    description: str
    opened_at: dt.datetime
    opened_by: User
    step_id: str = ""
    source_type: str = ""
    source_step: StepPlan | None = None  # a process deviation's source: the step (as the live service)
    reference: str = ""
    row: Deviation | None = None


@dataclass
class ValuePlan:
    parameter_id: str
    value: Any
    unit: str
    in_range: bool | None
    critical: bool
    entered_by: User
    entered_at: dt.datetime
    dev: DevPlan | None = None


@dataclass
class StepPlan:
    position: int
    step: dict[str, Any]
    status: str
    by: User
    started_at: dt.datetime
    performed_at: dt.datetime
    verified_by: User | None = None
    verified_at: dt.datetime | None = None
    skip_reason: str = ""
    values: list[ValuePlan] = field(default_factory=list)
    materials: list[tuple[str, MaterialLot, Decimal]] = field(default_factory=list)
    row: StepExecution | None = None

    @property
    def done_at(self) -> dt.datetime:
        return self.verified_at or self.performed_at


@dataclass
class QcPlan:
    attribute: dict[str, Any]
    number: float | None
    text: str
    conforms: bool
    tested_at: dt.datetime
    entered_at: dt.datetime
    dev: DevPlan | None = None


@dataclass
class HandoffPlan:
    kind: str
    outcome: str
    at: dt.datetime
    by: User
    location: str
    expected: str
    presented: str
    stage: str  # "collection" (DIN) or "product" (COI)
    notes: str = ""
    dev: DevPlan | None = None


@dataclass
class BatchPlan:
    site: Site
    unit: ManufacturingUnit
    rng: random.Random
    setup_day: dt.date
    harvest_day: int
    failure: str | None
    fresh: bool
    car_mean: float
    reference: str = ""
    din: str = ""
    din_check: str = ""
    coi: str = ""
    order: dict[str, Any] = field(default_factory=dict)
    collection: dict[str, Any] = field(default_factory=dict)
    steps: list[StepPlan] = field(default_factory=list)
    qc: list[QcPlan] = field(default_factory=list)
    handoffs: list[HandoffPlan] = field(default_factory=list)
    devs: list[DevPlan] = field(default_factory=list)
    #: The shipper logger's reading at the receipt: the receipt step reads it from the logger's rows
    #: (``custody.write_shipments``), as a live batch does (issue 15, one fact, one value).
    shipper_celsius: float | None = None
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    end_reason: str = ""

    @property
    def start(self) -> dt.datetime:
        assert self.started_at is not None, "planned batches have a start"
        return self.started_at


# --- helpers -------------------------------------------------------------------------------------


def clip(value: float, lo: float | None = None, hi: float | None = None) -> float:
    if lo is not None and value < lo:
        value = lo
    if hi is not None and value > hi:
        value = hi
    return value


def in_range(param: dict[str, Any], value: Any) -> bool | None:
    """The check a step value gets against its parameter: range for numbers, target otherwise;
    ``None`` when the parameter has neither."""
    lo, hi, target = param.get("min"), param.get("max"), param.get("target")
    if schema.value_type(param) in ("number", "integer"):
        if lo is None and hi is None:
            return None if target is None else value == target
        return (lo is None or value >= lo) and (hi is None or value <= hi)
    if target is None:
        return None
    return bool(value == target)


def conforms(acceptance: dict[str, Any], number: float | None, text: str) -> bool:
    """The acceptance criterion of a specification attribute (inclusive ``min``/``max``, or ``equals``)."""
    if acceptance.get("equals") is not None:
        return text == str(acceptance["equals"])
    assert number is not None
    lo, hi = acceptance.get("min"), acceptance.get("max")
    return (lo is None or number >= lo) and (hi is None or number <= hi)


def acceptance_text(attribute: dict[str, Any]) -> str:
    a, unit = attribute["acceptance"], f" {attribute['unit']}" if attribute.get("unit") else ""
    if a.get("equals") is not None:
        return str(a["equals"])
    parts = ([f"≥ {a['min']:g}{unit}"] if a.get("min") is not None else []) + (
        [f"≤ {a['max']:g}{unit}"] if a.get("max") is not None else [])
    return " and ".join(parts)


def range_text(param: dict[str, Any]) -> str:
    unit = f" {param['unit']}" if param.get("unit") else ""
    lo, hi = param.get("min"), param.get("max")
    if lo is not None and hi is not None:
        return f"{lo:g}–{hi:g}{unit}"
    if lo is not None:
        return f"≥ {lo:g}{unit}"
    if hi is not None:
        return f"≤ {hi:g}{unit}"
    return f"target {param.get('target')}"


def show(value: Any, unit: str) -> str:
    return f"{value}{(' ' + unit) if unit else ''}"


def local_time(day: dt.date, hours: float, tz: ZoneInfo) -> dt.datetime:
    """``hours`` after local midnight of ``day`` at the site, in UTC."""
    local = dt.datetime.combine(day, dt.time(), tzinfo=tz) + dt.timedelta(hours=hours)
    return local.astimezone(dt.UTC)


def minutes(m: float) -> dt.timedelta:
    return dt.timedelta(minutes=m)


def weighted(rng: random.Random, options: Iterable[tuple[str, float]]) -> str:
    names, weights = zip(*options, strict=True)
    return str(rng.choices(names, weights)[0])
