"""Demo manufacturing history: about 18 months of batches at the six active demo sites, so that
batch lists, review by exception, SPC and comparability have something real-looking to show.

This is history *loaded* by the demo loader, not executed in POCare: every batch is marked
``Batch.origin = demo_history``, its rows are inserted in bulk (no service ran, no per-step
ledger events), and the site's chain gets ONE ledger event per batch (``HISTORY_LOADED``) that
lists what was loaded with counts, the deviations, and a SHA-256 of the batch's generated content.
No electronic signatures are created: a signature needs a re-authenticated person at the moment
of signing (P11-200), which loaded history cannot have; the history shows who performed and who
verified each step, not that they signed it.

What is generated, per batch (``random.Random(seed)``, so the same seed gives the same history):

* a therapy order (accepted, with a COI) and its apheresis collection with a DIN
  (``pocare.custody.isbt``), and the custody hand-offs from vein to vein — a few blocked by a
  scanned label that was another patient's, each with a custody deviation;
* every step of master-file v1 in order, done by the site's demo people as the steps'
  qualifications ask (operator; QC analyst for the flow-cytometry IPC; the site manager as second
  person), with values drawn around the master file's targets and ranges, a few out of range
  (process deviation linked from the value), and the material lots used (released, unexpired);
* hourly device readings of the monitored parameters over the culture, one device push, and
  the odd alarm acknowledged by the operator;
* a QC result for every attribute of the specification, drawn from the published distributions
  (DOMAIN.md), out-of-specification results opening a laboratory deviation.

About 4 % of batches fail (UK national panel 3.87 %, Blood Cancer J 2025) and are aborted at
the step that found it; at Groningen the transduction (CAR+) drifts down over the last four
months, for the SPC pages to find.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from pocare.accounts.models import User
from pocare.accounts.roles import Role
from pocare.custody import isbt
from pocare.custody.models import Collection, Handoff, HandoffKind, HandoffOutcome, OrderStatus, TherapyOrder
from pocare.custody.services import APHERESIS_STABILITY
from pocare.ledger import canonical
from pocare.ledger.services import event_record
from pocare.manufacturing.events import ManufacturingEvent
from pocare.manufacturing.models import (
    Alarm,
    Batch,
    BatchOrigin,
    BatchStatus,
    DevicePush,
    DeviceReading,
    LotStatus,
    MaterialLot,
    MaterialUse,
    QcResult,
    StepExecution,
    StepStatus,
    StepValue,
)
from pocare.masterfile.models import MasterFileVersion
from pocare.masterfile.schema import iter_steps
from pocare.network.models import ManufacturingUnit, Site, SiteStatus
from pocare.quality.models import Deviation, DeviationKind

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

_MATERIALS: dict[str, tuple[str, int, int]] = {
    # code: (supplier, days a lot is in use at a site, shelf life in days) — (estimate)
    "SYR-5ML": ("BD", 180, 1095), "TS520": ("Miltenyi Biotec", 120, 730),
    "CD4-REAG": ("Miltenyi Biotec", 90, 540), "CD8-REAG": ("Miltenyi Biotec", 90, 540),
    "PBS-EDTA": ("Miltenyi Biotec", 120, 730), "TRANSACT": ("Miltenyi Biotec", 90, 540),
    "TEXMACS": ("Miltenyi Biotec", 90, 365), "IL7": ("Miltenyi Biotec", 120, 730),
    "IL15": ("Miltenyi Biotec", 120, 730), "LV-CAR19": ("Vector manufacturer (qualified CDMO)", 60, 365),
    "BACT-AER": ("bioMérieux", 120, 365), "BACT-ANA": ("bioMérieux", 120, 365),
    "BAG-INF": ("Macopharma", 180, 1095), "PLASMALYTE": ("Baxter", 120, 730),
}
_DEFAULT_MATERIAL = ("Qualified supplier", 120, 730)


@dataclass(frozen=True)
class HistorySummary:
    """What the demo history holds (or, when ``loaded`` is false, held already)."""

    loaded: bool
    batches: int
    aborted: int
    steps: int
    values: int
    materials: int
    readings: int
    alarms: int
    qc_results: int
    deviations: int
    handoffs: int
    seconds: float

    def counts_line(self) -> str:
        """The counts, the same whether the history was loaded now or before."""
        return (f"Demo history: {self.batches} batches ({self.aborted} aborted), {self.steps} steps, "
                f"{self.values} step values, {self.readings} device readings, {self.alarms} alarms, "
                f"{self.qc_results} QC results, {self.deviations} deviations, {self.handoffs} custody hand-offs")

    def line(self) -> str:
        return (f"{self.counts_line()} — generated in {self.seconds:.1f} s" if self.loaded
                else f"{self.counts_line()} — already loaded")


# --- the plan of one batch (plain data; rows are built from it when flushed) ----------------------


@dataclass
class _Dev:
    kind: str
    title: str
    description: str
    opened_at: dt.datetime
    opened_by: User
    step_id: str = ""
    source_type: str = ""
    source_step: _Step | None = None  # a process deviation's source: the step (as the live service)
    reference: str = ""
    row: Deviation | None = None


@dataclass
class _Value:
    parameter_id: str
    value: Any
    unit: str
    in_range: bool | None
    critical: bool
    entered_by: User
    entered_at: dt.datetime
    dev: _Dev | None = None


@dataclass
class _Step:
    position: int
    step: dict[str, Any]
    status: str
    by: User
    started_at: dt.datetime
    performed_at: dt.datetime
    verified_by: User | None = None
    verified_at: dt.datetime | None = None
    skip_reason: str = ""
    values: list[_Value] = field(default_factory=list)
    materials: list[tuple[str, MaterialLot, Decimal]] = field(default_factory=list)
    row: StepExecution | None = None

    @property
    def done_at(self) -> dt.datetime:
        return self.verified_at or self.performed_at


@dataclass
class _Qc:
    attribute: dict[str, Any]
    number: float | None
    text: str
    conforms: bool
    tested_at: dt.datetime
    entered_at: dt.datetime
    dev: _Dev | None = None


@dataclass
class _Handoff:
    kind: str
    outcome: str
    at: dt.datetime
    by: User
    location: str
    expected: str
    presented: str
    stage: str  # "collection" (DIN) or "product" (COI)
    notes: str = ""
    dev: _Dev | None = None


@dataclass
class _Plan:
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
    steps: list[_Step] = field(default_factory=list)
    qc: list[_Qc] = field(default_factory=list)
    handoffs: list[_Handoff] = field(default_factory=list)
    devs: list[_Dev] = field(default_factory=list)
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    end_reason: str = ""

    @property
    def start(self) -> dt.datetime:
        assert self.started_at is not None, "planned batches have a start"
        return self.started_at


# --- entry point ---------------------------------------------------------------------------------


def load_history(*, seed: int = 2026, months: int = 18, now: dt.datetime | None = None) -> HistorySummary:
    """Load ``months`` of demo manufacturing history ending about a month before ``now`` (default: the
    server clock). Idempotent: when demo-history batches exist, nothing is loaded and their counts
    are returned."""
    if Batch.objects.filter(origin=BatchOrigin.DEMO_HISTORY).exists():
        return history_summary()
    began = time.perf_counter()
    now = now or timezone.now()
    if now.tzinfo is None:
        raise ValueError("now must be UTC-aware")
    now = now.astimezone(dt.UTC)
    version = MasterFileVersion.objects.select_related("product").filter(
        product__code=PRODUCT_CODE, number=1).first()
    if version is None:
        raise RuntimeError("Load the demo master file (pocare.masterfile.demo) before the demo history.")
    sites = list(Site.objects.filter(code__in=SITE_CODES, status=SiteStatus.ACTIVE).order_by("code"))
    gen = _Generator(version=version, sites=sites, seed=seed, months=months, now=now)
    with transaction.atomic():
        counts = gen.run()
    return HistorySummary(loaded=True, seconds=time.perf_counter() - began, **counts)


def history_summary() -> HistorySummary:
    """Counts of the demo history in the database."""
    batches = Batch.objects.filter(origin=BatchOrigin.DEMO_HISTORY)
    of_batch = {"step__batch__origin": BatchOrigin.DEMO_HISTORY}
    return HistorySummary(
        loaded=False,
        batches=batches.count(),
        aborted=batches.filter(status=BatchStatus.ABORTED).count(),
        steps=StepExecution.objects.filter(batch__origin=BatchOrigin.DEMO_HISTORY).count(),
        values=StepValue.objects.filter(**of_batch).count(),
        materials=MaterialUse.objects.filter(**of_batch).count(),
        readings=DeviceReading.objects.filter(batch__origin=BatchOrigin.DEMO_HISTORY).count(),
        alarms=Alarm.objects.filter(batch__origin=BatchOrigin.DEMO_HISTORY).count(),
        qc_results=QcResult.objects.filter(batch__origin=BatchOrigin.DEMO_HISTORY).count(),
        deviations=Deviation.objects.filter(batch__origin=BatchOrigin.DEMO_HISTORY).count(),
        handoffs=Handoff.objects.filter(order__batch__origin=BatchOrigin.DEMO_HISTORY).count(),
        seconds=0.0,
    )


# --- helpers -------------------------------------------------------------------------------------


def _clip(value: float, lo: float | None = None, hi: float | None = None) -> float:
    if lo is not None and value < lo:
        value = lo
    if hi is not None and value > hi:
        value = hi
    return value


def _in_range(param: dict[str, Any], value: Any) -> bool | None:
    """The check a step value gets against its parameter: range for numbers, target otherwise;
    ``None`` when the parameter has neither."""
    lo, hi, target = param.get("min"), param.get("max"), param.get("target")
    if param["type"] in ("number", "integer"):
        if lo is None and hi is None:
            return None if target is None else value == target
        return (lo is None or value >= lo) and (hi is None or value <= hi)
    if target is None:
        return None
    return bool(value == target)


def _conforms(acceptance: dict[str, Any], number: float | None, text: str) -> bool:
    """The acceptance criterion of a specification attribute (inclusive ``min``/``max``, or ``equals``)."""
    if acceptance.get("equals") is not None:
        return text == str(acceptance["equals"])
    assert number is not None
    lo, hi = acceptance.get("min"), acceptance.get("max")
    return (lo is None or number >= lo) and (hi is None or number <= hi)


def _acceptance_text(attribute: dict[str, Any]) -> str:
    a, unit = attribute["acceptance"], f" {attribute['unit']}" if attribute.get("unit") else ""
    if a.get("equals") is not None:
        return str(a["equals"])
    parts = ([f"≥ {a['min']:g}{unit}"] if a.get("min") is not None else []) + (
        [f"≤ {a['max']:g}{unit}"] if a.get("max") is not None else [])
    return " and ".join(parts)


def _range_text(param: dict[str, Any]) -> str:
    unit = f" {param['unit']}" if param.get("unit") else ""
    lo, hi = param.get("min"), param.get("max")
    if lo is not None and hi is not None:
        return f"{lo:g}–{hi:g}{unit}"
    if lo is not None:
        return f"≥ {lo:g}{unit}"
    if hi is not None:
        return f"≤ {hi:g}{unit}"
    return f"target {param.get('target')}"


def _show(value: Any, unit: str) -> str:
    return f"{value}{(' ' + unit) if unit else ''}"


def _local(day: dt.date, hours: float, tz: ZoneInfo) -> dt.datetime:
    """``hours`` after local midnight of ``day`` at the site, in UTC."""
    local = dt.datetime.combine(day, dt.time(), tzinfo=tz) + dt.timedelta(hours=hours)
    return local.astimezone(dt.UTC)


def _minutes(m: float) -> dt.timedelta:
    return dt.timedelta(minutes=m)


class _Numbers:
    """Next free sequence numbers (batch references, DINs, COIs, deviation references), continuing
    after what the database has, so that later live numbering never collides."""

    def __init__(self) -> None:
        self._next: dict[tuple[str, str], int] = {}

    def take(self, kind: str, prefix: str) -> int:
        key = (kind, prefix)
        if key not in self._next:
            self._next[key] = self._last(kind, prefix) + 1
        number = self._next[key]
        self._next[key] = number + 1
        return number

    @staticmethod
    def _last(kind: str, prefix: str) -> int:
        values: list[str]
        if kind == "batch":
            values = list(Batch.objects.filter(reference__startswith=prefix).values_list("reference", flat=True))
        elif kind == "deviation":
            values = list(Deviation.objects.filter(reference__startswith=prefix).values_list("reference", flat=True))
        elif kind == "din":
            values = list(Collection.objects.filter(din__startswith=prefix).values_list("din", flat=True))
        else:  # coi
            values = [v for v in TherapyOrder.objects.filter(coi__startswith=prefix).values_list("coi", flat=True)
                      if v]
        if kind in ("batch", "deviation"):
            numbers = [v.rsplit("-", 1)[1] for v in values]
        else:  # the six-digit sequence after facility (5) and year (2); a COI starts with "C"
            numbers = [v[7:13] if kind == "din" else v[8:14] for v in values]
        return max((int(n) for n in numbers if n.isdigit()), default=0)


# --- the generator -------------------------------------------------------------------------------


class _Generator:
    def __init__(self, *, version: MasterFileVersion, sites: list[Site], seed: int, months: int,
                 now: dt.datetime) -> None:
        self.version = version
        self.product = version.product
        self.content = version.content
        self.steps = iter_steps(self.content)
        self.monitoring = self.content["process"].get("monitoring", [])
        self.attributes = self.content["specification"]["attributes"]
        self.sites = sites
        self.seed = seed
        self.rng = random.Random(seed)  # noqa: S311 (demo data, reproducible; nothing secret)
        self.now = now
        self.first_start = now - dt.timedelta(days=round(months * 30.4375))
        self.last_start = now - LAST_START_BEFORE_NOW
        self.numbers = _Numbers()
        self.people: dict[str, User] = {}
        self.lots: dict[tuple[str, str], list[MaterialLot]] = {}
        self.counts: dict[str, int] = defaultdict(int)

    # people

    def person(self, role: Role, site: Site) -> User:
        from pocare.web.demo import demo_username

        username = demo_username(role, site.code)
        if username not in self.people:
            user = User.objects.filter(username=username).first()
            if user is None:
                raise RuntimeError(f"The demo person {username} is missing; load the demo people first.")
            self.people[username] = user
        return self.people[username]

    # the whole run

    def run(self) -> dict[str, int]:
        self._load_lots()
        plans = self._schedule()
        for plan in plans:
            self._plan_batch(plan)
        self._number_deviations(plans)
        for i in range(0, len(plans), CHUNK):
            self._flush(plans[i:i + CHUNK])
        return {k: self.counts[k] for k in ("batches", "aborted", "steps", "values", "materials", "readings",
                                            "alarms", "qc_results", "deviations", "handoffs")}

    # material lots: one lot of each material in use at a time per site, released, unexpired

    def _load_lots(self) -> None:
        codes = sorted({m["code"] for s in self.steps for m in s.get("materials", [])})
        names = {m["code"]: m["name"] for s in self.steps for m in s.get("materials", [])}
        rows = []
        for site in self.sites:
            qc, manager = self.person(Role.QC_ANALYST, site), self.person(Role.SITE_MANAGER, site)
            for code in codes:
                supplier, in_use, shelf = _MATERIALS.get(code, _DEFAULT_MATERIAL)
                start = self.first_start - dt.timedelta(days=self.rng.randint(5, 30))
                lots = []
                while start < self.now:
                    received = start - dt.timedelta(days=self.rng.randint(5, 20), hours=self.rng.uniform(0, 8))
                    number = f"{received:%y%m}{self.rng.randint(1000, 9999)}"
                    if code == "LV-CAR19":
                        number = f"LV19-{number}"
                    lot = MaterialLot(
                        site=site, material_code=code, name=names[code], lot_number=number, supplier=supplier,
                        expiry_date=(received + dt.timedelta(days=shelf)).date(), status=LotStatus.RELEASED,
                        received_by=qc, received_at=received, decided_by=manager,
                        decided_at=received + dt.timedelta(days=self.rng.randint(1, 3)),
                    )
                    lot._in_use = (start, start + dt.timedelta(days=in_use))  # type: ignore[attr-defined]
                    lots.append(lot)
                    start += dt.timedelta(days=in_use)
                self.lots[(site.code, code)] = lots
                rows.extend(lots)
        MaterialLot.objects.bulk_create(rows, batch_size=2000)

    def lot(self, site: Site, code: str, at: dt.datetime) -> MaterialLot:
        lots = self.lots[(site.code, code)]
        for lot in lots:
            begin, end = lot._in_use  # type: ignore[attr-defined]
            if begin <= at < end:
                return lot
        return lots[-1]

    # scheduling: each unit runs one batch at a time, set-up to harvest, then a turnaround

    def _schedule(self) -> list[_Plan]:
        plans = []
        for site in self.sites:
            tz = ZoneInfo(site.time_zone)
            units = list(ManufacturingUnit.objects.filter(site=site).order_by("serial"))
            for unit in units:
                # A unit whose calibration or maintenance has lapsed ran nothing after that date.
                usable_until = min(unit.calibration_due, unit.maintenance_due)
                day = self.first_start.astimezone(tz).date() + dt.timedelta(days=self.rng.randint(1, 12))
                while True:
                    rng = random.Random(f"{self.seed}:{unit.serial}:{day.isoformat()}")  # noqa: S311
                    failure = None
                    if rng.random() < FAILURE_RATE:
                        failure = _weighted(rng, FAILURE_CAUSES)
                    harvest_day = 10 if failure == "poor-growth" else rng.choices((8, 9, 10), (1, 2, 1))[0]
                    start = _local(day - dt.timedelta(days=1), 12, tz)
                    if start > self.last_start:
                        break
                    if day + dt.timedelta(days=harvest_day + 1) >= usable_until:
                        break
                    plans.append(_Plan(site=site, unit=unit, rng=rng, setup_day=day, harvest_day=harvest_day,
                                       failure=failure, fresh=rng.random() < FRESH_SHARE,
                                       car_mean=self._car_mean(site, start)))
                    day += dt.timedelta(days=harvest_day + rng.randint(*TURNAROUND_DAYS))
        plans.sort(key=lambda p: (p.setup_day, p.site.code, p.unit.serial))
        return plans

    def _car_mean(self, site: Site, start: dt.datetime) -> float:
        """Mean CAR+ of a batch started at ``start``: N(33, 7) everywhere (ARI-0001 validation lots,
        Castella 2019), drifting at Groningen from 33 % to 21 % over its last ~4 months."""
        if site.code != DRIFT_SITE:
            return CAR_MEAN
        drift_from = self.last_start - dt.timedelta(days=DRIFT_DAYS)
        if start <= drift_from:
            return CAR_MEAN
        fraction = min(1.0, (start - drift_from) / (self.last_start - drift_from))
        return CAR_MEAN - (CAR_MEAN - DRIFT_TO) * fraction

    # one batch

    def _plan_batch(self, p: _Plan) -> None:
        rng, site, tz = p.rng, p.site, ZoneInfo(p.site.time_zone)
        operator, manager = self.person(Role.OPERATOR, site), self.person(Role.SITE_MANAGER, site)
        qc, physician = self.person(Role.QC_ANALYST, site), self.person(Role.PHYSICIAN, site)

        # Collection on the day before set-up: apheresis in the morning, 3–5 h (estimate).
        eve = p.setup_day - dt.timedelta(days=1)
        collection_start = _local(eve, 7.5 + rng.uniform(0, 1.5), tz)
        collection_end = collection_start + dt.timedelta(hours=rng.uniform(3, 5))
        year = collection_end.astimezone(tz).year  # the DIN's year: when collection ended, there
        ordered_at = collection_start - dt.timedelta(days=rng.uniform(10, 28))
        accepted_at = ordered_at + dt.timedelta(hours=rng.uniform(4, 72))
        din_seq = self.numbers.take("din", f"{site.facility_id}{year % 100:02d}")
        p.din, p.din_check = isbt.din_build(site.facility_id, year, din_seq)
        accepted_year = accepted_at.astimezone(tz).year
        coi_seq = self.numbers.take("coi", f"C{site.facility_id}{accepted_year % 100:02d}")
        p.coi = isbt.coi_build(site.facility_id, accepted_year, coi_seq)
        indication = rng.choices(("Relapsed/refractory large B-cell lymphoma",
                                  "Relapsed/refractory B-cell acute lymphoblastic leukaemia"), (4, 1))[0]
        p.order = {"recipient_id": f"{site.code}-PSN-{rng.getrandbits(32):08X}",
                   "recipient_birth_year": accepted_at.year - int(_clip(rng.gauss(60, 12), 19, 80)),
                   "recipient_weight_kg": Decimal(f"{_clip(rng.gauss(75, 14), 42, 130):.1f}"),
                   "indication": indication, "ordered_by": physician, "ordered_at": ordered_at,
                   "accepted_by": manager, "accepted_at": accepted_at,
                   "status": OrderStatus.CANCELLED if p.failure else OrderStatus.INFUSED}
        p.collection = {"started": collection_start, "ended": collection_end,
                        "volume_ml": Decimal(f"{_clip(rng.gauss(220, 45), 90, 400):.1f}"),
                        "donor_tests": {"HIV-1/2": "negative", "HBsAg": "negative", "anti-HBc": "negative",
                                        "anti-HCV": "negative", "syphilis": "negative"},
                        "recorded_by": physician, "recorded_at": collection_end + _minutes(rng.uniform(5, 20))}

        # Custody up to the POCare site (same hospital: minutes, not hours).
        at = collection_end + _minutes(2)
        self._handoff(p, HandoffKind.COLLECTION, at, physician, "Apheresis unit", "collection")
        at += _minutes(rng.uniform(20, 60))
        self._handoff(p, HandoffKind.DISPATCH_TO_SITE, at, physician, "Apheresis unit, 2–8 °C shipper",
                      "collection")
        at += _minutes(rng.uniform(10, 45))
        receipt = self._handoff(p, HandoffKind.RECEIPT_AT_SITE, at, operator, "Cell therapy unit, goods-in",
                                "collection")
        p.started_at = receipt + _minutes(rng.uniform(5, 20))

        weight = float(p.order["recipient_weight_kg"])
        latent = self._latent(p)
        clock = p.started_at
        day_of: dict[str, tuple[int, float]] = {  # step id: (culture day, local start hour) for day-bound steps
            "prodigy-setup": (0, 7.75), "transduction": (1, 0.0), "culture-wash": (rng.choice((3, 4)), 9.0),
            "ipc-day5": (5, 9.0), "expansion-harvest-decision": (p.harvest_day - 1, 8.5),
            "harvest": (p.harvest_day, 8.0),
        }
        for position, step in enumerate(self.steps):
            sid = step["id"]
            if sid in day_of:
                culture_day, hour = day_of[sid]
                if sid == "transduction":  # day 1: about 24 h after activation
                    activation = next(s for s in p.steps if s.step["id"] == "activation")
                    anchor = activation.started_at + dt.timedelta(hours=24 + rng.uniform(-0.5, 1.0))
                else:
                    anchor = _local(p.setup_day + dt.timedelta(days=culture_day), hour + rng.uniform(0, 1.2), tz)
                clock = max(clock, anchor)
            if position == 0:  # as in the live record: the start of the batch is the start-of-manufacture scan
                self._handoff(p, HandoffKind.MANUFACTURE_START, clock, operator, "Closed-system room", "collection")
                clock += _minutes(rng.uniform(5, 15))
            skip = sid == "cryopreservation" and p.fresh
            by = qc if step.get("qualification") == "qc-flow-cytometry" else operator
            started = clock
            performed = started + _minutes(step["expected_duration_min"] * rng.uniform(0.85, 1.3))
            s = _Step(position=position, step=step, status=StepStatus.SKIPPED if skip else StepStatus.COMPLETE,
                      by=by, started_at=started, performed_at=performed)
            if skip:
                s.performed_at = started + _minutes(rng.uniform(1, 4))
                s.skip_reason = "Fresh product (disposition fresh): not cryopreserved."
            else:
                if step.get("second_person_verification"):
                    s.verified_by, s.verified_at = manager, performed + _minutes(rng.uniform(5, 25))
                values = self._values(p, sid, latent, weight)
                for param in step.get("parameters", []):
                    value = values[param["id"]]
                    ok = _in_range(param, value)
                    v = _Value(param["id"], value, param.get("unit") or "", ok, bool(param.get("critical")), by,
                               performed - _minutes(rng.uniform(1, 6)))
                    if ok is False:
                        v.dev = self._dev(p, DeviationKind.PROCESS, v.entered_at, by, step_id=sid,
                                          source_type=StepExecution._meta.label,
                                          title=f"Out of range: {param['name']} at {step['name']}"[:200],
                                          description=(f"{_show(value, v.unit)} recorded for {param['name']} "
                                                       f"(master file: {_range_text(param)}) at step {sid}."))
                        v.dev.source_step = s
                    s.values.append(v)
                for m in step.get("materials", []):
                    s.materials.append((m["code"], self.lot(site, m["code"], started),
                                        Decimal(str(m["quantity"]))))
            p.steps.append(s)
            clock = s.done_at + _minutes(rng.uniform(3, 15))
            if sid == "disposition-choice" and p.fresh:
                self._handoff(p, HandoffKind.FRESH_HOLD, clock, operator, "Product fridge 2–8 °C", "product")
            if sid == "cryopreservation" and not skip:
                self._handoff(p, HandoffKind.CRYOPRESERVATION, clock, operator, "Cryostore, LN2 vapour phase",
                              "product")
            if p.failure and sid == latent["fails_at"]:
                p.ended_at = s.done_at + dt.timedelta(hours=rng.uniform(1, 3))
                p.end_reason = latent["end_reason"]
                return
        p.ended_at = max(s.done_at for s in p.steps)
        self._qc_results(p, latent, qc)
        self._to_patient(p, operator, physician)

    def _latent(self, p: _Plan) -> dict[str, Any]:
        """The batch's underlying biology, from which its values are read."""
        rng = p.rng
        car = _clip(rng.gauss(p.car_mean, CAR_SD), 6, 65)
        fold = _clip(rng.lognormvariate(3.4, 0.25), 8, 80)  # ~30-fold to day 8–12 (Zhu et al. 2018)
        latent: dict[str, Any] = {
            "car": car, "fold": fold,
            "purity": _clip(rng.gauss(98, 4), 80.5, 99.9),  # 98 ± 4 % (Zhu et al. 2018)
            "recovery": _clip(rng.gauss(55, 6), 32, 80),  # 55 ± 6 % (Zhu et al. 2018)
            "viability5": _clip(rng.gauss(93, 3), 75, 99.5),
            "viability_harvest": _clip(rng.gauss(97.2, 1.2), 88, 99.8),
            "fails_at": None, "end_reason": "",
        }
        if p.failure == "low-purity":
            latent["purity"] = rng.uniform(62, 78)
            latent["fails_at"] = "cd4-cd8-selection"
            latent["end_reason"] = (f"Manufacturing failure: low T-cell purity after CD4/CD8 selection "
                                    f"({latent['purity']:.1f} %, master file ≥ 80 %).")
        elif p.failure == "low-viability":
            latent["viability5"] = rng.uniform(48, 68)
            latent["fails_at"] = "ipc-day5"
            latent["end_reason"] = (f"Manufacturing failure: low viability at the day-5 in-process control "
                                    f"({latent['viability5']:.1f} %, master file ≥ 70 %).")
        elif p.failure == "poor-growth":
            latent["fold"] = rng.uniform(2.0, 4.6)
            latent["fails_at"] = "expansion-harvest-decision"
            latent["end_reason"] = (f"Manufacturing failure: poor growth ({latent['fold']:.1f}-fold by day 9, "
                                    f"master file ≥ 5); the dose cannot be reached.")
        return latent

    def _values(self, p: _Plan, sid: str, lat: dict[str, Any], weight: float) -> dict[str, Any]:
        """The values recorded at step ``sid``, drawn around the master file's targets and ranges."""
        rng = p.rng
        at = p.steps[-1].performed_at if p.steps else p.started_at
        assert at is not None
        if sid == "receipt-identity":
            receipt = next(h.at for h in p.handoffs if h.kind == HandoffKind.RECEIPT_AT_SITE)
            temperature = rng.uniform(8.2, 9.1) if rng.random() < 0.01 else _clip(rng.gauss(4.6, 0.9), 2.2, 7.8)
            return {"din-matches": True, "shipper-temperature": round(temperature, 1),
                    "transit-time": round((receipt - p.collection["ended"]).total_seconds() / 3600, 1)}
        if sid == "apheresis-count":
            tnc = _clip(rng.lognormvariate(8.5, 0.35), 1800, 15000)  # ~5 × 10^9 TNC (estimate)
            lat["tnc"], lat["cd3"] = tnc, _clip(rng.gauss(45, 15), 6, 85)
            return {"tnc": round(tnc), "viability": round(_clip(rng.gauss(96, 2.2), 84, 99.8), 1),
                    "cd3-fraction": round(lat["cd3"], 1)}
        if sid == "prodigy-setup":
            return {"program": "TCT", "tubing-set-lot": self.lot(p.site, "TS520", at).lot_number,
                    "self-test-passed": True}
        if sid == "cd4-cd8-selection":
            selected = lat["tnc"] * lat["cd3"] / 100 * lat["recovery"] / 100 * lat["purity"] / 100
            lat["selected"] = selected
            return {"purity": round(lat["purity"], 1), "recovery": round(lat["recovery"], 1),
                    "selected-cells": round(selected)}
        if sid == "activation":
            seeded = min(100.0, lat["selected"]) * rng.uniform(0.96, 1.0)
            lat["seeded"] = seeded
            temperature = 36.4 if rng.random() < 0.005 else _clip(rng.gauss(37.0, 0.1), 36.7, 37.3)
            return {"cells-seeded": round(seeded, 1), "culture-temperature": round(temperature, 1)}
        if sid == "transduction":
            moi = round(rng.uniform(4.5, 4.8) if rng.random() < 0.005 else _clip(rng.gauss(5.2, 0.2), 5, 6), 1)
            titre = rng.uniform(80, 150)  # 10^6 TU/mL of the vector lot (estimate)
            return {"vector-lot": self.lot(p.site, "LV-CAR19", at).lot_number, "moi": moi,
                    "vector-volume": round(moi * lat["seeded"] / titre, 2)}
        if sid == "culture-wash":
            return {"washes": 1 if rng.random() < 0.003 else 2}
        if sid == "ipc-day5":
            # Day-5 CAR+ tracks the final product's (≥ 5 % on day 5, Front Immunol 2024;15:1328368).
            growth5 = lat["fold"] ** 0.5 * rng.uniform(0.8, 1.1)
            return {"viable-cells": round(lat["seeded"] * growth5 * lat["viability5"] / 100),
                    "viability": round(lat["viability5"], 1),
                    "car-positive": round(_clip(lat["car"] + rng.gauss(0, 3), 3, 70), 1)}
        if sid == "expansion-harvest-decision":
            return {"harvest-day": p.harvest_day, "fold-expansion": round(lat["fold"], 1)}
        if sid == "ipc-sterility-sampling":
            return {"samples-taken": True}
        if sid == "harvest":
            lat["harvested"] = lat["seeded"] * lat["fold"]
            return {"total-viable-cells": round(lat["harvested"]), "viability": round(lat["viability_harvest"], 1)}
        if sid == "formulation":
            available = lat["harvested"] * lat["car"] / 100 / weight  # 10^6 CAR+ cells per kg
            dose = min(available, COHORT_DOSE * rng.gauss(1.0, 0.05))
            lat["dose"] = dose
            return {"dose": round(dose, 2), "fraction-bags": 3,
                    "fill-volume": round(_clip(rng.gauss(70, 8), 30, 100), 1)}
        if sid == "release-sampling":
            return {"sample-volume": round(_clip(rng.gauss(5, 0.8), 2.5, 9), 1)}
        if sid == "disposition-choice":
            return {"disposition": "fresh" if p.fresh else "cryopreserved",
                    "storage-temperature": round(_clip(rng.gauss(4.3, 0.6), 2.5, 7.5), 1)}
        if sid == "cryopreservation":
            end = rng.uniform(-89.5, -88) if rng.random() < 0.005 else _clip(rng.gauss(-95, 2), -100, -90.5)
            return {"end-temperature": round(end, 1),
                    "storage-position": f"Dewar {rng.randint(1, 3)} / rack {'ABCDEF'[rng.randint(0, 5)]} / "
                                        f"box {rng.randint(1, 12)} / position {rng.randint(1, 25)}"}
        return self._generic_values(p, sid)

    def _generic_values(self, p: _Plan, sid: str) -> dict[str, Any]:
        """A step this module does not know (a later master file): the target, or the middle of the range."""
        step = next(s for s in self.steps if s["id"] == sid)
        values: dict[str, Any] = {}
        for param in step.get("parameters", []):
            lo, hi, target = param.get("min"), param.get("max"), param.get("target")
            if target is not None:
                values[param["id"]] = target
            elif param["type"] == "choice":
                values[param["id"]] = (param.get("choices") or [""])[0]
            elif param["type"] in ("number", "integer"):
                middle = ((lo if lo is not None else hi or 0) + (hi if hi is not None else lo or 0)) / 2
                values[param["id"]] = int(middle) if param["type"] == "integer" else middle
            elif param["type"] == "boolean":
                values[param["id"]] = True
            else:
                values[param["id"]] = f"{sid} {p.rng.randint(100, 999)}"
        return values

    def _qc_results(self, p: _Plan, lat: dict[str, Any], qc: User) -> None:
        """Every attribute of the specification, read at its method's typical turnaround (DOMAIN.md)."""
        rng = p.rng
        sampled = next(s.performed_at for s in p.steps if s.step["id"] == "release-sampling")
        culture_sample = next(s.performed_at for s in p.steps if s.step["id"] == "ipc-sterility-sampling")
        h = dt.timedelta(hours=1)
        car = lat["car"]
        draws: dict[str, tuple[float | None, str, dt.datetime]] = {
            # ARI-0001 validation lots (Castella 2019, Table 2): viability 97.9/98.1/98.0 %,
            # CD3+ 97.9/98.6/98.6 %, CAR+ 26.0/41.9/39.7 %, VCN 1.45/2.32/2.51; flow panel 2–4 h.
            "viability": (round(_clip(lat["viability_harvest"] + rng.gauss(0.7, 0.5), 85, 99.9), 1), "",
                          sampled + h * rng.uniform(2, 4)),
            "cd3": (round(_clip(rng.gauss(98.3, 0.8), 90, 99.9), 1), "", sampled + h * rng.uniform(2, 4)),
            "car-positive": (round(_clip(car + rng.gauss(0, 1.5), 3, 70), 1), "", sampled + h * rng.uniform(2, 4)),
            "dose": (round(lat["dose"], 2), "", sampled + h * rng.uniform(4, 5)),
            # VCN by ddPCR 1–2 days, higher with more transduction.
            "vcn": (round(_clip(2.0 + 0.03 * (car - CAR_MEAN) + rng.gauss(0, 0.35), 0.6, 6), 2), "",
                    sampled + h * rng.uniform(24, 48)),
            # Kinetic LAL ~1 h; low, well below the 0.5 EU/mL limit (estimate).
            "endotoxin": (round(_clip(rng.lognormvariate(-3.0, 0.6), 0.005, 2), 3), "",
                          sampled + h * rng.uniform(1, 2)),
            # Automated culture ~7 days (DOMAIN.md QC turnaround).
            "sterility": (None, ("growth (Staphylococcus epidermidis)" if rng.random() < STERILITY_POSITIVE_RATE
                                 else "no growth"), sampled + dt.timedelta(days=7, hours=rng.uniform(0, 6))),
            # Mycoplasma qPCR 4–24 h on the culture sample taken before harvest.
            "mycoplasma": (None, "not detected", culture_sample + h * rng.uniform(4, 24)),
            "rcl": (None, "not detected", sampled + h * rng.uniform(48, 120)),
            # NALM6 surviving fraction at E:T 1:1 (< 70 %), lower with more CAR+ cells (estimate).
            "potency": (round(_clip(35 - 0.8 * (car - CAR_MEAN) + rng.gauss(0, 10), 4, 98), 1), "",
                        sampled + h * rng.uniform(24, 72)),
        }
        for attribute in self.attributes:
            aid = attribute["id"]
            if aid in draws:
                number, text, tested = draws[aid]
            else:  # an attribute this module does not know: its acceptance exactly
                a = attribute["acceptance"]
                number = None if a.get("equals") is not None else float(a.get("min") or a.get("max") or 0)
                text = str(a["equals"]) if a.get("equals") is not None else ""
                tested = sampled + h * 4
            entered = tested + _minutes(rng.uniform(10, 60))
            ok = _conforms(attribute["acceptance"], number, text)
            result = _Qc(attribute, number, text, ok, tested, entered)
            if not ok:
                shown = text or _show(number, attribute.get("unit") or "")
                result.dev = self._dev(p, DeviationKind.LABORATORY, entered, qc, source_type="",
                                       title=f"Out of specification: {attribute['name']} {shown}"[:200],
                                       description=(f"{attribute['name']} of the final product {shown} "
                                                    f"(acceptance {_acceptance_text(attribute)}; "
                                                    f"method {attribute['method']}). Laboratory investigation "
                                                    f"opened."))
            p.qc.append(result)

    def _to_patient(self, p: _Plan, operator: User, physician: User) -> None:
        """Custody from the product to the patient: fresh within 24 h of harvest; cryopreserved after
        release (sterility 7 days, DOMAIN.md), thawed at the bedside."""
        rng = p.rng
        sampled = next(s.performed_at for s in p.steps if s.step["id"] == "release-sampling")
        if p.fresh:
            # Fresh product is released before sterility, mycoplasma and VCN are final (PMC11461191).
            at = sampled + dt.timedelta(hours=rng.uniform(5, 8))
        else:
            at = sampled + dt.timedelta(days=rng.uniform(8, 21))
        self._handoff(p, HandoffKind.DISPATCH_TO_HOSPITAL, at, operator, "Cell therapy unit, dispatch", "product")
        at += _minutes(rng.uniform(10, 35))
        self._handoff(p, HandoffKind.RECEIPT_AT_HOSPITAL, at, physician, "Haematology ward", "product")
        if not p.fresh:
            at += _minutes(rng.uniform(20, 60))
            self._handoff(p, HandoffKind.THAW, at, physician, "Haematology ward, bedside thaw", "product")
            at += _minutes(rng.uniform(5, 20))
        else:
            at += _minutes(rng.uniform(30, 120))
        self._handoff(p, HandoffKind.INFUSION, at, physician, "Haematology ward, bedside", "product")

    def _handoff(self, p: _Plan, kind: str, at: dt.datetime, by: User, location: str, stage: str) -> dt.datetime:
        """A completed hand-off; now and then first a blocked attempt with another patient's label."""
        expected = p.din if stage == "collection" else p.coi
        rng = p.rng
        if kind in (HandoffKind.RECEIPT_AT_SITE, HandoffKind.MANUFACTURE_START, HandoffKind.RECEIPT_AT_HOSPITAL,
                    HandoffKind.INFUSION) and rng.random() < BLOCKED_HANDOFF_RATE / 4:
            other = max(1, int(expected[7:13] if stage == "collection" else expected[8:14]) + rng.choice((-2, -1, 1)))
            if stage == "collection":
                presented = isbt.din_build(p.site.facility_id, 2000 + int(expected[5:7]), other)[0]
            else:
                presented = isbt.coi_build(p.site.facility_id, 2000 + int(expected[6:8]), other)
            blocked = _Handoff(kind, HandoffOutcome.BLOCKED, at, by, location, expected, presented, stage,
                               notes="Scanned label is another patient's; material set aside, QA called.")
            label = "DIN" if stage == "collection" else "COI"
            what = HandoffKind(kind).label[0].lower() + HandoffKind(kind).label[1:]
            blocked.dev = self._dev(
                p, DeviationKind.CUSTODY, at, by, source_type=Handoff._meta.label,
                title=f"{label} mismatch at {what}",
                description=(f"{label} {presented} was presented where {expected} was expected "
                             f"({what}, {location}). The hand-off was blocked."))
            p.handoffs.append(blocked)
            at += _minutes(rng.uniform(8, 30))
            notes = "Right material found and scanned after the blocked attempt; QA informed."
        else:
            notes = ""
        p.handoffs.append(_Handoff(kind, HandoffOutcome.COMPLETED, at, by, location, expected, expected, stage,
                                   notes=notes))
        return at

    def _dev(self, p: _Plan, kind: str, at: dt.datetime, by: User, *, title: str, description: str,
             source_type: str, step_id: str = "") -> _Dev:
        dev = _Dev(kind=str(kind), title=title, description=description, opened_at=at, opened_by=by,
                   step_id=step_id, source_type=source_type)
        p.devs.append(dev)
        return dev

    def _number_deviations(self, plans: list[_Plan]) -> None:
        """References DEV-<SITE>-<YEAR>-<NNNN> in the order the deviations were opened, after any the
        database holds (so ``quality.services._next_reference`` continues the sequence)."""
        devs = sorted(((d, p.site) for p in plans for d in p.devs), key=lambda x: x[0].opened_at)
        for dev, site in devs:
            prefix = f"DEV-{site.code}-{dev.opened_at.year}-"
            dev.reference = f"{prefix}{self.numbers.take('deviation', prefix):04d}"

    # writing

    def _flush(self, plans: list[_Plan]) -> None:
        """Insert the rows of ``plans`` in bulk, then one ledger event per batch."""
        for p in plans:
            assert p.started_at is not None
            prefix = f"{p.site.code}-{p.started_at.year}-"
            p.reference = f"{prefix}{self.numbers.take('batch', prefix):04d}"
        orders = [TherapyOrder(site=p.site, treating_site=p.site, product=self.product, coi=p.coi,
                               **p.order) for p in plans]
        TherapyOrder.objects.bulk_create(orders)
        collections = [Collection(order=o, din=p.din, flags="00", check_character=p.din_check,
                                  collection_site=p.site, collection_started_at=p.collection["started"],
                                  collection_ended_at=p.collection["ended"], autologous=True,
                                  volume_ml=p.collection["volume_ml"], donor_tests=p.collection["donor_tests"],
                                  expires_at=p.collection["ended"] + APHERESIS_STABILITY,
                                  recorded_by=p.collection["recorded_by"], recorded_at=p.collection["recorded_at"])
                       for p, o in zip(plans, orders, strict=True)]
        Collection.objects.bulk_create(collections)
        batches = [Batch(reference=p.reference, order=o, collection=c, site=p.site, unit=p.unit,
                         masterfile_version=self.version,
                         status=BatchStatus.ABORTED if p.failure else BatchStatus.COMPLETED,
                         origin=BatchOrigin.DEMO_HISTORY, started_by=self.person(Role.OPERATOR, p.site),
                         started_at=p.start, ended_at=p.ended_at, end_reason=p.end_reason)
                   for p, o, c in zip(plans, orders, collections, strict=True)]
        Batch.objects.bulk_create(batches)

        steps, step_plans = [], []
        for p, b in zip(plans, batches, strict=True):
            for s in p.steps:
                uses_unit = s.step.get("equipment_class") in ("clinimacs_prodigy", "lonza_cocoon")
                steps.append(StepExecution(
                    batch=b, position=s.position, step_id=s.step["id"], unit_operation=s.step["unit_operation"],
                    status=s.status, started_by=s.by, started_at=s.started_at, performed_by=s.by,
                    performed_at=s.performed_at, verified_by=s.verified_by, verified_at=s.verified_at,
                    equipment=p.unit if uses_unit else None, skip_reason=s.skip_reason))
                s.row = steps[-1]
                step_plans.append(s)
        StepExecution.objects.bulk_create(steps, batch_size=2000)
        deviations = []
        for p, o, b in zip(plans, orders, batches, strict=True):
            for d in p.devs:
                d.row = Deviation(reference=d.reference, site=p.site, kind=d.kind, title=d.title,
                                  description=d.description, product=self.product, batch=b, order=o,
                                  step_id=d.step_id, source_type=d.source_type,
                                  source_id=str(d.source_step.row.pk) if d.source_step and d.source_step.row else "",
                                  opened_at=d.opened_at,
                                  opened_by=d.opened_by)
                deviations.append(d.row)
        Deviation.objects.bulk_create(deviations)

        values: list[StepValue] = []
        uses: list[MaterialUse] = []
        sources: list[tuple[_Dev, Handoff]] = []
        for row, s in zip(steps, step_plans, strict=True):
            for v in s.values:
                value = StepValue(step=row, parameter_id=v.parameter_id, value=v.value, unit=v.unit,
                                  in_range=v.in_range, critical=v.critical, entered_by=v.entered_by,
                                  entered_at=v.entered_at, deviation=v.dev.row if v.dev else None)
                values.append(value)
            for code, lot, quantity in s.materials:
                uses.append(MaterialUse(step=row, lot=lot, material_code=code, quantity=quantity,
                                        recorded_at=s.performed_at))
        StepValue.objects.bulk_create(values, batch_size=2000)
        MaterialUse.objects.bulk_create(uses, batch_size=2000)

        qcs = []
        for p, b in zip(plans, batches, strict=True):
            for q in p.qc:
                a = q.attribute
                result = QcResult(batch=b, attribute_id=a["id"], value_number=q.number, value_text=q.text,
                                  unit=a.get("unit") or "", conforms=q.conforms, method=a["method"],
                                  tested_at=q.tested_at, entered_by=self.person(Role.QC_ANALYST, p.site),
                                  entered_at=q.entered_at, deviation=q.dev.row if q.dev else None)
                qcs.append(result)
        QcResult.objects.bulk_create(qcs, batch_size=2000)

        handoffs: list[Handoff] = []
        for p, o, c, b in zip(plans, orders, collections, batches, strict=True):
            for h in p.handoffs:
                in_manufacture = h.kind not in (HandoffKind.COLLECTION, HandoffKind.DISPATCH_TO_SITE,
                                                HandoffKind.RECEIPT_AT_SITE)
                handoff = Handoff(order=o, collection=c, batch=b if in_manufacture else None, kind=h.kind,
                              outcome=h.outcome, site=p.site, location=h.location, time_zone=p.site.time_zone,
                              occurred_at=h.at, performed_by=h.by, performed_by_name=h.by.printed_name,
                              expected_identifier=h.expected, presented_identifier=h.presented,
                              deviation=h.dev.row if h.dev else None, notes=h.notes)
                handoffs.append(handoff)
                if h.dev is not None:
                    sources.append((h.dev, handoff))
        Handoff.objects.bulk_create(handoffs, batch_size=2000)

        # A blocked hand-off and its deviation point at each other: link the deviation to its source
        # now that the hand-off has an id (as custody.services does after the hand-off is saved).
        for dev, source in sources:
            assert dev.row is not None
            dev.row.source_id = str(source.pk)
        Deviation.objects.bulk_update([d.row for d, _ in sources if d.row is not None], ["source_id"])

        pushes = self._device_data(plans, batches)

        for p, b, c in zip(plans, batches, collections, strict=True):
            content_sha = self._content_hash(p, pushes.get(b.pk, ""))
            n_values = sum(len(s.values) for s in p.steps)
            n_materials = sum(len(s.materials) for s in p.steps)
            event_record(
                actor=None, system=SYSTEM, event_type=ManufacturingEvent.HISTORY_LOADED, site=p.site, obj=b,
                reason="Demo history: loaded, not executed",
                new={"reference": b.reference, "origin": BatchOrigin.DEMO_HISTORY.value, "status": b.status,
                     "unit": p.unit.serial, "masterfile_version": self.version.number, "coi": p.coi,
                     "din": c.din_printed, "started_at": b.started_at, "ended_at": b.ended_at,
                     "counts": {"steps": len(p.steps), "values": n_values, "materials": n_materials,
                                "qc_results": len(p.qc), "handoffs": len(p.handoffs),
                                "readings": self._readings_count.get(b.pk, 0),
                                "alarms": self._alarms_count.get(b.pk, 0)},
                     "deviations": [d.reference for d in p.devs], "sha256": content_sha},
            )
            self.counts["steps"] += len(p.steps)
            self.counts["values"] += n_values
            self.counts["materials"] += n_materials
            self.counts["qc_results"] += len(p.qc)
            self.counts["handoffs"] += len(p.handoffs)
            self.counts["deviations"] += len(p.devs)
        self.counts["batches"] += len(plans)
        self.counts["aborted"] += sum(1 for p in plans if p.failure)

    _readings_count: dict[int, int]
    _alarms_count: dict[int, int]

    def _device_data(self, plans: list[_Plan], batches: list[Batch]) -> dict[int, str]:
        """Hourly readings of each monitored parameter over the culture (activation to harvest or
        abort), one push per batch when the culture ends, and alarms where a value left the limits."""
        self._readings_count, self._alarms_count = {}, {}
        pushes, readings_of = [], []
        for p, b in zip(plans, batches, strict=True):
            series = _device_series(p, self.monitoring)
            digest = hashlib.sha256("\n".join(f"{pid},{canonical.format_timestamp(at)},{v!r}"
                                              for pid, at, v, _ in series).encode()).hexdigest()
            received = max(at for _, at, _, _ in series) + _minutes(p.rng.uniform(5, 30)) if series else b.started_at
            pushes.append(DevicePush(idempotency_key=f"demo-history:{b.reference}",
                                     pushed_by=self.person(Role.OPERATOR, p.site), received_at=received,
                                     rows=len(series), sha256=digest))
            readings_of.append(series)
        DevicePush.objects.bulk_create(pushes)
        rows: list[DeviceReading] = []
        alarm_specs = []
        for p, b, push, series in zip(plans, batches, pushes, readings_of, strict=True):
            limits = {m["id"]: (m.get("alarm_min"), m.get("alarm_max")) for m in self.monitoring}
            open_alarm: dict[str, dict[str, Any]] = {}
            alarms = []
            for pid, at, value, out in series:
                reading = DeviceReading(push=push, batch=b, parameter_id=pid, at=at, value=value, out_of_limits=out)
                rows.append(reading)
                if out:
                    if pid in open_alarm:
                        a = open_alarm[pid]
                        a["count"] += 1
                        lo, hi = limits[pid]
                        mid = ((lo if lo is not None else value) + (hi if hi is not None else value)) / 2
                        if abs(value - mid) > abs(a["extreme"] - mid):
                            a["extreme"] = value
                    else:
                        open_alarm[pid] = {"reading": reading, "extreme": value, "count": 1, "pid": pid}
                        alarms.append(open_alarm[pid])
                else:
                    open_alarm.pop(pid, None)
            for a in alarms:
                alarm_specs.append((p, b, a, limits[a["pid"]]))
            self._readings_count[b.pk] = len(series)
            self._alarms_count[b.pk] = len(alarms)
        DeviceReading.objects.bulk_create(rows, batch_size=5000)
        alarm_rows = []
        for p, b, a, (lo, hi) in alarm_specs:
            reading = a["reading"]
            alarm_rows.append(Alarm(
                batch=b, parameter_id=a["pid"], first_reading=reading, raised_at=reading.at, alarm_min=lo,
                alarm_max=hi, extreme_value=a["extreme"], readings_outside=a["count"],
                acknowledged_by=self.person(Role.OPERATOR, p.site),
                acknowledged_at=reading.at + _minutes(p.rng.uniform(4, 35)),
                acknowledgement=_ACKNOWLEDGEMENTS.get(a["pid"], "Checked at the device; value back within limits."),
            ))
        Alarm.objects.bulk_create(alarm_rows)
        self.counts["readings"] += len(rows)
        self.counts["alarms"] += len(alarm_rows)
        return {b.pk: push.sha256 for b, push in zip(batches, pushes, strict=True)}

    def _content_hash(self, p: _Plan, push_sha: str) -> str:
        """SHA-256 of what was generated for the batch (canonical JSON), as the ledger event records it."""
        return canonical.content_hash({
            "reference": p.reference, "site": p.site.code, "unit": p.unit.serial, "coi": p.coi, "din": p.din,
            "order": {k: (v.username if isinstance(v, User) else v) for k, v in p.order.items()},
            "collection": {k: (v.username if isinstance(v, User) else v) for k, v in p.collection.items()},
            "started_at": p.started_at, "ended_at": p.ended_at, "end_reason": p.end_reason,
            "steps": [{"position": s.position, "step": s.step["id"], "status": s.status, "by": s.by.username,
                       "started_at": s.started_at, "performed_at": s.performed_at,
                       "verified_by": s.verified_by.username if s.verified_by else None,
                       "verified_at": s.verified_at, "skip_reason": s.skip_reason,
                       "values": [[v.parameter_id, v.value, v.unit, v.in_range, v.entered_at,
                                   v.dev.reference if v.dev else None] for v in s.values],
                       "materials": [[code, lot.lot_number, quantity] for code, lot, quantity in s.materials]}
                      for s in p.steps],
            "qc": [[q.attribute["id"], q.number, q.text, q.conforms, q.tested_at, q.entered_at,
                    q.dev.reference if q.dev else None] for q in p.qc],
            "handoffs": [[h.kind, h.outcome, h.at, h.by.username, h.expected, h.presented,
                          h.dev.reference if h.dev else None] for h in p.handoffs],
            "device_push_sha256": push_sha,
        })


_ACKNOWLEDGEMENTS = {
    "culture-temperature": "Chamber opened for the scheduled feed; temperature recovered within the hour. "
                           "No impact on the culture expected.",
    "co2": "CO2 supply bottle changed over; concentration back within limits.",
    "ph": "Medium exhausted ahead of the programmed feed; feed brought forward, pH recovered.",
    "dissolved-oxygen": "High cell density before harvest; agitation raised per programme, oxygen recovered.",
}


def _weighted(rng: random.Random, options: Iterable[tuple[str, float]]) -> str:
    names, weights = zip(*options, strict=True)
    return str(rng.choices(names, weights)[0])


def _device_series(p: _Plan, monitoring: list[dict[str, Any]]) -> list[tuple[str, dt.datetime, float, bool]]:
    """Hourly values of the monitored parameters from activation to harvest (or the abort), with
    now and then an excursion beyond the alarm limits (estimate; CliniMACS Prodigy process log)."""
    rng = random.Random(f"{p.rng.random()}:device")  # noqa: S311 (demo data)
    by_id = {s.step["id"]: s for s in p.steps}
    if "activation" not in by_id:
        return []
    begin = by_id["activation"].started_at
    end = by_id["harvest"].started_at if "harvest" in by_id else p.steps[-1].done_at
    hours = max(1, int((end - begin).total_seconds() // 3600))
    excursion = None
    if rng.random() < ALARM_RATE and monitoring:
        pid = rng.choice([m["id"] for m in monitoring])
        at_hour = rng.randint(max(1, hours // 3), max(1, hours - 3)) if pid != "dissolved-oxygen" else hours - 3
        excursion = (pid, at_hour, rng.randint(1, 3))
    rows = []
    for m in monitoring:
        pid, lo, hi = m["id"], m.get("alarm_min"), m.get("alarm_max")
        level = 0.0
        for k in range(hours + 1):
            at = begin + dt.timedelta(hours=k)
            frac = k / hours
            level = 0.8 * level + rng.gauss(0, 1)  # slowly wandering noise
            if pid == "culture-temperature":
                value = 37.0 + 0.05 * level
            elif pid == "co2":
                value = 5.0 + 0.03 * level
            elif pid == "ph":
                value = 7.35 - 0.3 * frac + 0.01 * level
            elif pid == "dissolved-oxygen":
                value = 92 - 55 * frac ** 1.5 + 1.5 * level
            else:  # a parameter this module does not know: the middle of its limits
                middle = ((lo if lo is not None else hi or 0) + (hi if hi is not None else lo or 0)) / 2
                value = middle + 0.01 * abs(middle) * level
            if excursion and excursion[0] == pid and excursion[1] <= k < excursion[1] + excursion[2]:
                value = {"culture-temperature": 35.6 + 0.3 * rng.random(), "co2": 4.2 + 0.2 * rng.random(),
                         "ph": 6.72 + 0.06 * rng.random(),
                         "dissolved-oxygen": 15 + 4 * rng.random()}.get(pid, (lo or 0) - 1)
            if hi is not None and pid == "dissolved-oxygen":
                value = min(value, hi)
            value = round(value, 2)
            out = (lo is not None and value < lo) or (hi is not None and value > hi)
            rows.append((pid, at, value, out))
    return rows
