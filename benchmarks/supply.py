"""Supply benchmark (GitHub issue 18): the recall trace and stock per site × material at network scale.

A network of 500 manufacturing sites over 10 years, written straight into PostgreSQL (bulk inserts of the
rows the trace reads; no services, no ledger): each site makes a batch a month (60,000 batches, each with
its order, collection, five steps that use material and eight material uses, its QP certification and
its dispatch and infusion hand-offs); each site receives each of the eight materials every month, and a
supplier's lot number is delivered to 25 sites at once (480,000 site lots); each lot has a receipt and
one consumption per use in the stock ledger (about 960,000 movements).

Measured, each after a warm-up:

- **Recall trace, forward** (``pocare.supply.recall.lot_trace``: a lot number to its 25 site lots, their
  stock, every use, batch, certification, dispatch, infusion and patient) against the strongest
  baseline an engineer writes with the ORM: the same lots with ``prefetch_related`` following the
  relations (uses → step → batch → order → hand-offs, batch → certification) and the rows assembled in
  Python. Both must name the same batches and patients before any time is reported.
- **Recall trace, back** (``patient_trace``: a chain of identity to every lot in contact with the cells).
- **Stock per site × material** (``selectors.stock_levels``: one query, for a Control Site person).
- **Stock per lot as the API sends it** (``/api/stock/?by=lot&site=``: one site's lots held, those used up
  left out in the query), and per lot over the whole network at once — which the API refuses, for this.

Target: the trace under 1 s over the whole network; stock as one query.

    .venv/bin/python benchmarks/supply.py           # 500 sites × 10 years (about 5 minutes to build)
    .venv/bin/python benchmarks/supply.py --quick   # 50 sites × 2 years
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import ebr  # noqa: E402
import scratch  # noqa: E402

MATERIALS = 8
SITES_PER_SUPPLIER_LOT = 25
STEPS_WITH_MATERIAL = 5
TARGET_S = 1.0
DB = "pocare_bench_supply"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def build(sites: int, years: int) -> dict[str, Any]:
    """The network, bulk-inserted; returns what the measurements need."""
    from django.db import connection
    from django.utils import timezone

    from pocare.accounts.models import User
    from pocare.custody.models import Collection, Handoff, HandoffKind, HandoffOutcome, OrderStatus, TherapyOrder
    from pocare.demo import masterfile as masterfile_demo
    from pocare.demo.people import load_people
    from pocare.manufacturing.models import Batch, BatchStatus, MaterialLot, MaterialUse, StepExecution, StepStatus
    from pocare.network.models import ManufacturingUnit, Site, SiteKind, SiteStatus
    from pocare.release.models import Certification, Decision
    from pocare.supply.models import MovementKind, StockLocation, StockMovement

    rng = random.Random(18)
    load_people(password=ebr.PASSWORD)
    version = masterfile_demo.load_product_and_v1(password=ebr.PASSWORD)
    someone = User.objects.get(username="qa")
    now = timezone.now().replace(microsecond=0)
    start = now - dt.timedelta(days=365 * years)
    months = years * 12
    new_sites = Site.objects.bulk_create([
        Site(code=f"B{i:03d}", name=f"Bench site {i}", kind=SiteKind.HOSPITAL, status=SiteStatus.ACTIVE,
             facility_id=f"B{i:04d}", city="Bench", country="ES", latitude=Decimal("40.4"),
             longitude=Decimal("-3.7"), time_zone="Europe/Madrid", created_at=start) for i in range(sites)])
    units = ManufacturingUnit.objects.bulk_create([
        ManufacturingUnit(site=s, device_type="clinimacs_prodigy", serial=f"BENCH-{s.code}", calibration_due=now.date(),
                          maintenance_due=now.date(), created_at=start) for s in new_sites])
    locations = StockLocation.objects.bulk_create([
        StockLocation(site=s, code="STORE", name="Store", created_by=someone, created_at=start) for s in new_sites])
    materials = [f"MAT-{m}" for m in range(MATERIALS)]
    # Lots: each month, each material, a supplier lot number shared by a group of sites.
    lots: list[MaterialLot] = []
    for month in range(months):
        received = start + dt.timedelta(days=30.4 * month)
        for m, code in enumerate(materials):
            for i, site in enumerate(new_sites):
                group = i // SITES_PER_SUPPLIER_LOT
                lots.append(MaterialLot(
                    site=site, material_code=code, name=code, lot_number=f"L{month:03d}-{m}-{group:03d}",
                    supplier="Bench supplier", expiry_date=(received + dt.timedelta(days=400)).date(),
                    status="released", received_by=someone, received_at=received, decided_by=someone,
                    decided_at=received))
    MaterialLot.objects.bulk_create(lots, batch_size=5000)
    lot_of = {(lot.site_id, lot.material_code, lot.received_at): lot for lot in lots}
    movements = [StockMovement(location=locations[i % sites], lot=lot, kind=MovementKind.RECEIVED,
                               quantity=Decimal(20), unit="count", actor=someone, occurred_at=lot.received_at,
                               reason="bench") for i, lot in enumerate(lots)]
    # Batches: one a month per site, made with that month's lots.
    orders, plans = [], []
    for month in range(months):
        received = start + dt.timedelta(days=30.4 * month)
        at = received + dt.timedelta(days=3)
        for i, site in enumerate(new_sites):
            n = len(orders)
            orders.append(TherapyOrder(
                site=site, treating_site=site, product=version.product, recipient_id=f"PT-{n:06d}",
                recipient_weight_kg=Decimal("70.0"), indication="r/r LBCL", status=OrderStatus.ACCEPTED,
                coi=f"CB{n:012d}", ordered_by=someone, ordered_at=at, accepted_by=someone, accepted_at=at))
            plans.append((i, site, received, at))
    TherapyOrder.objects.bulk_create(orders, batch_size=5000)
    collections = Collection.objects.bulk_create([
        Collection(order=o, din=f"B{n:012d}", check_character="A", collection_site=o.site,
                   collection_started_at=o.ordered_at, collection_ended_at=o.ordered_at, volume_ml=Decimal("250.0"),
                   recorded_by=someone, recorded_at=o.ordered_at) for n, o in enumerate(orders)], batch_size=5000)
    batches = Batch.objects.bulk_create([
        Batch(reference=f"{site.code}-{n:06d}", order=o, collection=c, site=site, unit=units[i],
              masterfile_version=version, status=BatchStatus.COMPLETED, started_by=someone, started_at=at,
              ended_at=at + dt.timedelta(days=10))
        for n, (o, c, (i, site, _received, at)) in enumerate(zip(orders, collections, plans, strict=True))],
        batch_size=5000)
    steps = StepExecution.objects.bulk_create([
        StepExecution(batch=b, position=p, step_id=f"step-{p}", unit_operation="op", status=StepStatus.COMPLETE,
                      started_by=someone, started_at=b.started_at, performed_by=someone, performed_at=b.started_at)
        for b in batches for p in range(STEPS_WITH_MATERIAL)], batch_size=5000)
    uses = []
    for k, step in enumerate(steps):
        _i, site, received, at = plans[k // STEPS_WITH_MATERIAL]
        for code in materials[step.position::STEPS_WITH_MATERIAL]:
            uses.append(MaterialUse(step=step, lot=lot_of[(site.pk, code, received)], material_code=code,
                                    quantity=Decimal(1), recorded_at=at))
    MaterialUse.objects.bulk_create(uses, batch_size=5000)
    location_of = {loc.site_id: loc for loc in locations}
    movements += [StockMovement(location=location_of[u.lot.site_id], lot=u.lot, kind=MovementKind.CONSUMED,
                                quantity=Decimal(-1), unit="count", batch=u.step.batch, use=u, actor=someone,
                                occurred_at=u.recorded_at, reason="bench") for u in uses]
    StockMovement.objects.bulk_create(movements, batch_size=5000)
    Certification.objects.bulk_create([
        Certification(batch=b, decision=Decision.RELEASED if rng.random() > 0.03 else Decision.REJECTED, reason="bench",
                      checklist={}, checklist_hash="0" * 64, qp=someone, decided_at=b.ended_at) for b in batches],
        batch_size=5000)
    Handoff.objects.bulk_create([
        Handoff(order=o, batch=b, kind=kind, outcome=HandoffOutcome.COMPLETED, site=o.site, time_zone="Europe/Madrid",
                occurred_at=b.ended_at + dt.timedelta(days=days), performed_by=someone, performed_by_name="QA",
                expected_identifier=o.coi, presented_identifier=o.coi)
        for o, b in zip(orders, batches, strict=True)
        for kind, days in ((HandoffKind.DISPATCH_TO_HOSPITAL, 1), (HandoffKind.INFUSION, 2))], batch_size=5000)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    middle = lots[len(lots) // 2]
    return {"lot": (middle.material_code, middle.lot_number), "coi": orders[len(orders) // 2].coi,
            "rows": {"sites": sites, "batches": len(batches), "lots": len(lots), "uses": len(uses),
                     "movements": len(movements)}}


def baseline_trace(material_code: str, lot_number: str) -> set[tuple[str, str]]:
    """The ORM walk a competent engineer writes first: the lots, with every relation prefetched."""
    from pocare.custody.models import HandoffKind
    from pocare.manufacturing.models import MaterialLot

    rows = set()
    lots = (MaterialLot.objects.filter(material_code=material_code, lot_number=lot_number).select_related("site")
            .prefetch_related("uses__step__batch__order__handoffs", "uses__step__batch__certification",
                              "uses__step__batch__order__treating_site", "movements"))
    for lot in lots:
        _stock = sum(m.quantity for m in lot.movements.all())
        for use in lot.uses.all():
            batch = use.step.batch
            order = batch.order
            handoffs = {h.kind for h in order.handoffs.all()}
            _stage = ("infused" if HandoffKind.INFUSION in handoffs else
                      "dispatched" if HandoffKind.DISPATCH_TO_HOSPITAL in handoffs else
                      getattr(getattr(batch, "certification", None), "decision", None))
            rows.add((batch.reference, order.recipient_id))
    return rows


def timed(fn: Any, runs: int) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    fn()
    with CaptureQueriesContext(connection) as ctx:
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times, len(ctx.captured_queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 sites × 2 years")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    sites, years = (50, 2) if args.quick else (500, 10)
    url = scratch.prepare("postgresql", DB)
    os.environ.update({"DATABASE_URL": url, "POCARE_DEBUG": "0", "DJANGO_SETTINGS_MODULE": "pocare.settings"})
    import django

    django.setup()
    from pocare.accounts.models import User
    from pocare.network.models import Site
    from pocare.supply import recall, selectors

    t0 = time.perf_counter()
    world = build(sites, years)
    built_s = time.perf_counter() - t0
    material_code, lot_number = world["lot"]
    ours = recall.lot_trace(material_code=material_code, lot_number=lot_number)
    expected = baseline_trace(material_code, lot_number)
    assert {(r.batch, r.recipient) for r in ours.reached} == expected and expected, "the two traces disagree"
    qa = User.objects.get(username="qa")
    one_site = Site.objects.filter(stock_locations__isnull=False).order_by("code").first()
    results = {
        "forward": timed(lambda: recall.lot_trace(material_code=material_code, lot_number=lot_number), args.runs),
        "baseline": timed(lambda: baseline_trace(material_code, lot_number), args.runs),
        "back": timed(lambda: recall.patient_trace(identifier=world["coi"]), args.runs),
        "stock": timed(lambda: selectors.stock_levels(user=qa), max(5, args.runs // 5)),
        "held": timed(lambda: selectors.stock_levels(user=qa, site=one_site, by_lot=True, held_only=True),
                      args.runs),
        "every": timed(lambda: selectors.stock_levels(user=qa, by_lot=True), max(5, args.runs // 5)),
    }
    stock_rows = len(selectors.stock_levels(user=qa))
    held_rows = len(selectors.stock_levels(user=qa, site=one_site, by_lot=True, held_only=True))
    every_rows = len(selectors.stock_levels(user=qa, by_lot=True))
    machine = {"cpu": platform.processor() or platform.machine(), "cores": str(os.cpu_count()),
               "python": platform.python_version(),
               "postgresql": subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip(),
               "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                        cwd=ROOT).stdout.strip(),
               "load average (1 min)": f"{os.getloadavg()[0]:.2f}"}
    rows = world["rows"]
    lines = ["Machine:", *[f"- {k}: {v}" for k, v in machine.items()], "",
             f"Network: {rows['sites']} sites × {years} years: {rows['batches']:,} batches, "
             f"{rows['lots']:,} site lots, "
             f"{rows['uses']:,} material uses, {rows['movements']:,} stock movements (built in {built_s:.0f} s). "
             f"The traced lot number reaches {len(ours.lots)} site lots and {len(ours.batches)} batches.", "",
             "| measurement | p50 ms | p95 ms | max ms | queries | target |", "|---|---:|---:|---:|---:|---|"]
    for name, label in (("forward", "recall trace, lot → batches, products, patients (`lot_trace`)"),
                        ("baseline", "baseline: the ORM walk with `prefetch_related`"),
                        ("back", "recall trace, patient → lots (`patient_trace`)"),
                        ("stock", f"stock per site × material (`stock_levels`, {stock_rows:,} rows)"),
                        ("held", f"stock per lot at one site, the API's `/api/stock/?by=lot&site=` "
                                 f"({held_rows:,} rows)"),
                        ("every", f"per lot at every site at once, which the API refuses ({every_rows:,} rows)")):
        times, queries = results[name]
        ms = [1000 * t for t in times]
        target = ("—" if name in ("baseline", "every") else
                  f"one query: {'met' if queries <= 2 else 'MISSED'}" if name in ("stock", "held") else
                  f"< {TARGET_S:.0f} s: {'met' if pct(times, 95) < TARGET_S else 'MISSED'}")
        lines.append(f"| {label} | {statistics.median(ms):.1f} | {pct(ms, 95):.1f} | {max(ms):.1f} | {queries} "
                     f"| {target} |")
    print("\n".join(lines))
    scratch.drop("postgresql", DB)


if __name__ == "__main__":
    main()
