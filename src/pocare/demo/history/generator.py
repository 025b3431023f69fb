"""The generator of the demo history: who made each batch on which unit when, and what was
recorded — drawn with ``random.Random(seed)``, so the same seed gives the same history."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pocare.accounts.models import User
from pocare.accounts.roles import Role
from pocare.custody import isbt
from pocare.custody.models import Handoff, HandoffKind, HandoffOutcome, OrderStatus
from pocare.demo.history import biology
from pocare.demo.history.plan import (
    BLOCKED_HANDOFF_RATE,
    CAR_MEAN,
    DEFAULT_MATERIAL,
    DRIFT_DAYS,
    DRIFT_SITE,
    DRIFT_TO,
    FAILURE_CAUSES,
    FAILURE_RATE,
    FRESH_SHARE,
    LAST_START_BEFORE_NOW,
    MATERIALS,
    TURNAROUND_DAYS,
    BatchPlan,
    DevPlan,
    HandoffPlan,
    QcPlan,
    StepPlan,
    ValuePlan,
    acceptance_text,
    clip,
    conforms,
    in_range,
    local_time,
    minutes,
    range_text,
    show,
    weighted,
)
from pocare.demo.history.sequences import Sequences
from pocare.demo.people import demo_username
from pocare.manufacturing.models import LotStatus, MaterialLot, StepExecution, StepStatus
from pocare.masterfile.models import MasterFileVersion
from pocare.masterfile.schema import iter_steps
from pocare.network.models import ManufacturingUnit, Site
from pocare.quality.models import DeviationKind


class Generator:
    """Draws the history: material lots, a schedule per unit, then each batch's plan (see the
    package's docstring). Writes nothing; ``pocare.demo.history.write`` turns plans into rows."""

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
        self.numbers = Sequences()
        self.people: dict[str, User] = {}
        self.lots: dict[tuple[str, str], list[MaterialLot]] = {}
        self.counts: dict[str, int] = defaultdict(int)

    # people

    def person(self, role: Role, site: Site) -> User:
        username = demo_username(role, site.code)
        if username not in self.people:
            user = User.objects.filter(username=username).first()
            if user is None:
                raise RuntimeError(f"The demo person {username} is missing; load the demo people first.")
            self.people[username] = user
        return self.people[username]

    # material lots: one lot of each material in use at a time per site, released, unexpired

    def plan_lots(self) -> list[MaterialLot]:
        """The lots of every material at every site, unsaved, each with the days it is in use."""
        codes = sorted({m["code"] for s in self.steps for m in s.get("materials", [])})
        names = {m["code"]: m["name"] for s in self.steps for m in s.get("materials", [])}
        rows = []
        for site in self.sites:
            qc, manager = self.person(Role.QC_ANALYST, site), self.person(Role.SITE_MANAGER, site)
            for code in codes:
                supplier, in_use, shelf = MATERIALS.get(code, DEFAULT_MATERIAL)
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
        return rows

    # the batches: scheduled per unit, each planned, their deviations numbered

    def plan_batches(self) -> list[BatchPlan]:
        """Every batch of the history, planned (call after :meth:`plan_lots`: batches use the lots)."""
        plans = self._schedule()
        for plan in plans:
            self._plan_batch(plan)
        self._number_deviations(plans)
        return plans

    def lot(self, site: Site, code: str, at: dt.datetime) -> MaterialLot:
        lots = self.lots[(site.code, code)]
        for lot in lots:
            begin, end = lot._in_use  # type: ignore[attr-defined]
            if begin <= at < end:
                return lot
        return lots[-1]

    # scheduling: each unit runs one batch at a time, set-up to harvest, then a turnaround

    def _schedule(self) -> list[BatchPlan]:
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
                        failure = weighted(rng, FAILURE_CAUSES)
                    harvest_day = 10 if failure == "poor-growth" else rng.choices((8, 9, 10), (1, 2, 1))[0]
                    start = local_time(day - dt.timedelta(days=1), 12, tz)
                    if start > self.last_start:
                        break
                    if day + dt.timedelta(days=harvest_day + 1) >= usable_until:
                        break
                    plans.append(BatchPlan(site=site, unit=unit, rng=rng, setup_day=day, harvest_day=harvest_day,
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

    def _plan_batch(self, p: BatchPlan) -> None:
        """One batch from the patient's order to the infusion (or to the step where it failed)."""
        site = p.site
        operator, manager = self.person(Role.OPERATOR, site), self.person(Role.SITE_MANAGER, site)
        qc, physician = self.person(Role.QC_ANALYST, site), self.person(Role.PHYSICIAN, site)
        self._plan_order(p, physician=physician, manager=manager, operator=operator)
        latent = biology.latent(p)
        if not self._plan_steps(p, latent, operator=operator, manager=manager, qc=qc):
            return  # failed: aborted at the step that found it
        p.ended_at = max(s.done_at for s in p.steps)
        self._qc_results(p, latent, qc)
        self._to_patient(p, operator, physician)

    def _plan_order(self, p: BatchPlan, *, physician: User, manager: User, operator: User) -> None:
        """The order and its COI, the collection and its DIN, and custody up to the site's receipt,
        which starts the batch."""
        rng, site, tz = p.rng, p.site, ZoneInfo(p.site.time_zone)
        # Collection on the day before set-up: apheresis in the morning, 3–5 h (estimate).
        eve = p.setup_day - dt.timedelta(days=1)
        collection_start = local_time(eve, 7.5 + rng.uniform(0, 1.5), tz)
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
                   "recipient_birth_year": accepted_at.year - int(clip(rng.gauss(60, 12), 19, 80)),
                   "recipient_weight_kg": Decimal(f"{clip(rng.gauss(75, 14), 42, 130):.1f}"),
                   "indication": indication, "ordered_by": physician, "ordered_at": ordered_at,
                   "accepted_by": manager, "accepted_at": accepted_at,
                   "status": OrderStatus.CANCELLED if p.failure else OrderStatus.INFUSED}
        p.collection = {"started": collection_start, "ended": collection_end,
                        "volume_ml": Decimal(f"{clip(rng.gauss(220, 45), 90, 400):.1f}"),
                        "donor_tests": {"HIV-1/2": "negative", "HBsAg": "negative", "anti-HBc": "negative",
                                        "anti-HCV": "negative", "syphilis": "negative"},
                        "recorded_by": physician, "recorded_at": collection_end + minutes(rng.uniform(5, 20))}

        # Custody up to the POCare site (same hospital: minutes, not hours).
        at = collection_end + minutes(2)
        self._handoff(p, HandoffKind.COLLECTION, at, physician, "Apheresis unit", "collection")
        at += minutes(rng.uniform(20, 60))
        self._handoff(p, HandoffKind.DISPATCH_TO_SITE, at, physician, "Apheresis unit, 2–8 °C shipper",
                      "collection")
        at += minutes(rng.uniform(10, 45))
        receipt = self._handoff(p, HandoffKind.RECEIPT_AT_SITE, at, operator, "Cell therapy unit, goods-in",
                                "collection")
        p.started_at = receipt + minutes(rng.uniform(5, 20))

    def _plan_steps(self, p: BatchPlan, latent: dict[str, Any], *, operator: User, manager: User,
                    qc: User) -> bool:
        """Every step of the master file in order, on the culture days the process sets, with the
        product's hand-offs; ``False`` when the batch failed (it ends at the step that found it)."""
        rng, tz = p.rng, ZoneInfo(p.site.time_zone)
        clock = p.start
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
                    anchor = local_time(p.setup_day + dt.timedelta(days=culture_day), hour + rng.uniform(0, 1.2), tz)
                clock = max(clock, anchor)
            if position == 0:  # as in the live record: the start of the batch is the start-of-manufacture scan
                self._handoff(p, HandoffKind.MANUFACTURE_START, clock, operator, "Closed-system room", "collection")
                clock += minutes(rng.uniform(5, 15))
            by = qc if step.get("qualification") == "qc-flow-cytometry" else operator
            s = self._plan_step(p, position, step, clock, latent, by=by, manager=manager)
            p.steps.append(s)
            clock = s.done_at + minutes(rng.uniform(3, 15))
            if sid == "disposition-choice" and p.fresh:
                self._handoff(p, HandoffKind.FRESH_HOLD, clock, operator, "Product fridge 2–8 °C", "product")
            if sid == "cryopreservation" and s.status != StepStatus.SKIPPED:
                self._handoff(p, HandoffKind.CRYOPRESERVATION, clock, operator, "Cryostore, LN2 vapour phase",
                              "product")
            if p.failure and sid == latent["fails_at"]:
                p.ended_at = s.done_at + dt.timedelta(hours=rng.uniform(1, 3))
                p.end_reason = latent["end_reason"]
                return False
        return True

    def _plan_step(self, p: BatchPlan, position: int, step: dict[str, Any], started: dt.datetime,
                   latent: dict[str, Any], *, by: User, manager: User) -> StepPlan:
        """One step: skipped (cryopreservation of a fresh product), or done with its values — an
        out-of-range one opening a process deviation —, its materials and its verification."""
        rng, sid = p.rng, step["id"]
        skip = sid == "cryopreservation" and p.fresh
        performed = started + minutes(step["expected_duration_min"] * rng.uniform(0.85, 1.3))
        s = StepPlan(position=position, step=step, status=StepStatus.SKIPPED if skip else StepStatus.COMPLETE,
                     by=by, started_at=started, performed_at=performed)
        if skip:
            s.performed_at = started + minutes(rng.uniform(1, 4))
            s.skip_reason = "Fresh product (disposition fresh): not cryopreserved."
            return s
        if step.get("second_person_verification"):
            s.verified_by, s.verified_at = manager, performed + minutes(rng.uniform(5, 25))
        values = biology.step_values(p, step, latent, float(p.order["recipient_weight_kg"]), self.lot)
        for param in step.get("parameters", []):
            value = values[param["id"]]
            ok = in_range(param, value)
            v = ValuePlan(param["id"], value, param.get("unit") or "", ok, bool(param.get("critical")), by,
                          performed - minutes(rng.uniform(1, 6)))
            if ok is False:
                v.dev = self._dev(p, DeviationKind.PROCESS, v.entered_at, by, step_id=sid,
                                  source_type=StepExecution._meta.label,
                                  title=f"Out of range: {param['name']} at {step['name']}"[:200],
                                  description=(f"{show(value, v.unit)} recorded for {param['name']} "
                                               f"(master file: {range_text(param)}) at step {sid}."))
                v.dev.source_step = s
            s.values.append(v)
        for m in step.get("materials", []):
            s.materials.append((m["code"], self.lot(p.site, m["code"], started), Decimal(str(m["quantity"]))))
        return s

    def _qc_results(self, p: BatchPlan, lat: dict[str, Any], qc: User) -> None:
        """Every attribute of the specification, read at its method's typical turnaround (DOMAIN.md)."""
        rng = p.rng
        sampled = next(s.performed_at for s in p.steps if s.step["id"] == "release-sampling")
        culture_sample = next(s.performed_at for s in p.steps if s.step["id"] == "ipc-sterility-sampling")
        h = dt.timedelta(hours=1)
        draws = biology.qc_draws(p, lat, sampled, culture_sample)
        for attribute in self.attributes:
            aid = attribute["id"]
            if aid in draws:
                number, text, tested = draws[aid]
            else:  # an attribute this module does not know: its acceptance exactly
                a = attribute["acceptance"]
                number = None if a.get("equals") is not None else float(a.get("min") or a.get("max") or 0)
                text = str(a["equals"]) if a.get("equals") is not None else ""
                tested = sampled + h * 4
            entered = tested + minutes(rng.uniform(10, 60))
            ok = conforms(attribute["acceptance"], number, text)
            result = QcPlan(attribute, number, text, ok, tested, entered)
            if not ok:
                shown = text or show(number, attribute.get("unit") or "")
                result.dev = self._dev(p, DeviationKind.LABORATORY, entered, qc, source_type="",
                                       title=f"Out of specification: {attribute['name']} {shown}"[:200],
                                       description=(f"{attribute['name']} of the final product {shown} "
                                                    f"(acceptance {acceptance_text(attribute)}; "
                                                    f"method {attribute['method']}). Laboratory investigation "
                                                    f"opened."))
            p.qc.append(result)

    def _to_patient(self, p: BatchPlan, operator: User, physician: User) -> None:
        """Custody from the product to the patient: fresh within 24 h of harvest; cryopreserved after
        release (sterility 7 days, DOMAIN.md), thawed at the bedside."""
        rng = p.rng
        sampled = next(s.performed_at for s in p.steps if s.step["id"] == "release-sampling")
        if p.fresh:
            # Fresh product is released before sterility, mycoplasma and VCN are final (PMC11461191).
            at = sampled + dt.timedelta(hours=rng.uniform(5, 8))
        else:
            at = sampled + dt.timedelta(days=rng.uniform(8, 21))
        # Not before the results the release needs are in (the others may follow release).
        needed = [q.entered_at for q in p.qc if not q.attribute.get("result_after_release")]
        at = max([at, *(t + minutes(30) for t in needed)])
        self._handoff(p, HandoffKind.DISPATCH_TO_HOSPITAL, at, operator, "Cell therapy unit, dispatch", "product")
        at += minutes(rng.uniform(10, 35))
        self._handoff(p, HandoffKind.RECEIPT_AT_HOSPITAL, at, physician, "Haematology ward", "product")
        if not p.fresh:
            at += minutes(rng.uniform(20, 60))
            self._handoff(p, HandoffKind.THAW, at, physician, "Haematology ward, bedside thaw", "product")
            at += minutes(rng.uniform(5, 20))
        else:
            at += minutes(rng.uniform(30, 120))
        self._handoff(p, HandoffKind.INFUSION, at, physician, "Haematology ward, bedside", "product")

    def _handoff(self, p: BatchPlan, kind: str, at: dt.datetime, by: User, location: str, stage: str) -> dt.datetime:
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
            blocked = HandoffPlan(kind, HandoffOutcome.BLOCKED, at, by, location, expected, presented, stage,
                               notes="Scanned label is another patient's; material set aside, QA called.")
            label = "DIN" if stage == "collection" else "COI"
            what = HandoffKind(kind).label[0].lower() + HandoffKind(kind).label[1:]
            blocked.dev = self._dev(
                p, DeviationKind.CUSTODY, at, by, source_type=Handoff._meta.label,
                title=f"{label} mismatch at {what}",
                description=(f"{label} {presented} was presented where {expected} was expected "
                             f"({what}, {location}). The hand-off was blocked."))
            p.handoffs.append(blocked)
            at += minutes(rng.uniform(8, 30))
            notes = "Right material found and scanned after the blocked attempt; QA informed."
        else:
            notes = ""
        p.handoffs.append(HandoffPlan(kind, HandoffOutcome.COMPLETED, at, by, location, expected, expected, stage,
                                   notes=notes))
        return at

    def _dev(self, p: BatchPlan, kind: str, at: dt.datetime, by: User, *, title: str, description: str,
             source_type: str, step_id: str = "") -> DevPlan:
        dev = DevPlan(kind=str(kind), title=title, description=description, opened_at=at, opened_by=by,
                   step_id=step_id, source_type=source_type)
        p.devs.append(dev)
        return dev

    def _number_deviations(self, plans: list[BatchPlan]) -> None:
        """References DEV-<SITE>-<YEAR>-<NNNN> in the order the deviations were opened, after any the
        database holds (so ``quality.services._next_reference`` continues the sequence)."""
        devs = sorted(((d, p.site) for p in plans for d in p.devs), key=lambda x: x[0].opened_at)
        for dev, site in devs:
            prefix = f"DEV-{site.code}-{dev.opened_at.year}-"
            dev.reference = f"{prefix}{self.numbers.take('deviation', prefix):04d}"
