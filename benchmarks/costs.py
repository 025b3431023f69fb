"""Costs benchmark (GitHub issue 18): the cost roll-up of 250,000 batches on PostgreSQL, target < 5 s.

A network of 500 manufacturing sites over 10 years, written straight into PostgreSQL with
``INSERT … SELECT generate_series`` (no services, no ledger): 250,000 batches, each with its order and
collection, ten steps (performed by the site's operator, half of them verified by its manager), eight
material uses of the bill of materials, eight QC results (one batch in twenty with a corrected result), two
shipments of its order, and the QP's certification for nineteen in twenty; the demo's signed cost
model prices them, in a version 2 that also prices the vector lot of every other site at its own price
(``material_lots``: the lot prices' join runs for every material use). The operator's and the manager's
roles at every site are real memberships (the rate of the role held at the moment of the step).

Measured (each after a warm-up):

- **The roll-up in SQL** (``pocare.costs.rollup.site_month_totals``: one statement prices every line in
  the database and sums each site's batches by month of their end, by category), and the same statement
  returning every batch's amounts (``batch_totals(method="sql")``, 250,000 rows brought into Python);
- **The baseline**: the strongest an engineer writes with the ORM and the definition itself —
  ``method="records"``: the records of 400 batches at a time read in five queries (steps with people,
  roles, material uses, QC results, shipments), priced by ``compute.batch_cost_lines`` in Python and summed
  by site × month.

Both must give every batch the same cents, category by category, and every site × month the same sums,
before any time is reported.

Then the cost postings (``pocare.costs.postings``, docs/costs.md "Cost postings"):

- **(a) posting every batch from scratch**: ``postings_refresh`` on an empty ``costs_batchcost`` (the roll-up's
  statement writing one posting a batch, ``INSERT … SELECT … ON CONFLICT DO UPDATE``); every posting must equal
  the baseline's cents first;
- **(b) the incremental refresh after a day's events**: 100 batches touched through the ledger's service (60
  new QC results, 40 shipments, each with its ledger event), then ``postings_refresh``; the touched postings
  must equal their records;
- **(c) the roll-up from postings** (``site_month_totals(method="postings")``), which must equal the SQL
  roll-up; and the same with 100 batches pending, which it posts first in the call.

    .venv/bin/python benchmarks/costs.py            # 250,000 batches (a few minutes to build)
    .venv/bin/python benchmarks/costs.py --quick    # 10,000 batches
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
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

SITES = 500
TARGET_S = 5.0
STEPS, USES, TESTS = 10, 8, 8
DB = "pocare_bench_costs"


def build(batches: int, years: int, *, skeleton: bool = False) -> dict[str, Any]:
    """The network: small tables through the ORM, the large ones by SQL; returns the row counts."""
    from django.db import connection
    from django.utils import timezone

    from pocare.accounts.models import Membership, User
    from pocare.costs import services as costs_services
    from pocare.costs.models import CostModel
    from pocare.demo import costs as costs_demo
    from pocare.demo import masterfile as masterfile_demo
    from pocare.demo.people import load_people
    from pocare.ledger.signing import SigningCredentials
    from pocare.manufacturing.models import MaterialLot
    from pocare.network.models import ManufacturingUnit, Site, SiteKind, SiteStatus

    load_people(password=ebr.PASSWORD)
    version = masterfile_demo.load_product_and_v1(password=ebr.PASSWORD)
    now = timezone.now().replace(microsecond=0)
    start = now - dt.timedelta(days=365 * years)
    costs_demo.load_model(versions=[version], password=ebr.PASSWORD, effective_from=start.date())
    someone = User.objects.get(username="qa")
    sites = Site.objects.bulk_create([
        Site(code=f"C{i:03d}", name=f"Bench site {i}", kind=SiteKind.HOSPITAL, status=SiteStatus.ACTIVE,
             facility_id=f"C{i:04d}", city="Bench", country="ES", latitude=Decimal("40.4"),
             longitude=Decimal("-3.7"), time_zone="Europe/Madrid", created_at=start) for i in range(SITES)])
    ManufacturingUnit.objects.bulk_create([
        ManufacturingUnit(site=s, device_type="clinimacs_prodigy", serial=f"COST-{s.code}", calibration_due=now.date(),
                          maintenance_due=now.date(), created_at=start) for s in sites])
    # Each site its operator and its manager (two people a site, as the demo has; one person at 500 sites
    # would make every step's role a scan of 500 memberships, which no network has).
    unusable = "!"  # nobody signs in as them
    people = User.objects.bulk_create([User(username=f"{role}.{s.code.lower()}", printed_name=f"{role} {s.code}",
                                            password=unusable) for s in sites for role in ("operator", "manager")])
    Membership.objects.bulk_create([
        Membership(user=person, role="operator" if person.username.startswith("operator") else "site_manager",
                   site=s, granted_at=start, granted_by=someone)
        for s, pair in zip(sites, zip(people[::2], people[1::2], strict=True), strict=True) for person in pair])
    bill = list(costs_demo.MATERIALS)[:USES]  # priced by the demo's model, as the batches' own are
    attributes = list(costs_demo.QC)[:TESTS]
    MaterialLot.objects.bulk_create([
        MaterialLot(site=s, material_code=code, name=code, lot_number=f"{code}-{s.code}", supplier="Bench supplier",
                    expiry_date=now.date() + dt.timedelta(days=400), status="released", received_by=someone,
                    received_at=start, decided_by=someone, decided_at=start) for s in sites for code in bill],
        batch_size=5000)
    # Version 2, from the same day: version 1 with a price of its own for the vector lot of every other site
    # (``material_lots``), so that the lot prices' join runs for every material use — its worst case.
    priced = "LV-CAR19" if "LV-CAR19" in bill else bill[0]
    v1 = CostModel.objects.get(number=1)
    draft = costs_services.cost_model_draft(
        actor=someone, effective_from=start.date(), reason="Bench: lot prices",
        content={**v1.content, "material_lots": {priced: {f"{priced}-{s.code}": 14_200 for s in sites[::2]}}})
    costs_services.cost_model_approve(actor=someone, model=draft, reason="Bench",
                                      credentials=SigningCredentials(username="qa", password=ebr.PASSWORD))
    span = (now - start - dt.timedelta(days=12)).total_seconds()
    params = {"n": batches, "sites": SITES, "start": start, "span": span, "someone": someone.pk,
              "version": version.pk, "product": version.product_id,
              "bill": bill, "attributes": attributes, "steps": STEPS}
    with connection.cursor() as cur:
        cur.execute("CREATE TEMP TABLE bench_site AS SELECT row_number() OVER (ORDER BY s.id) - 1 AS k, s.id, "
                    "u.id AS unit_id, op.id AS operator, mg.id AS manager FROM network_site s "
                    "JOIN network_manufacturingunit u ON u.site_id = s.id "
                    "JOIN accounts_user op ON op.username = 'operator.' || lower(s.code) "
                    "JOIN accounts_user mg ON mg.username = 'manager.' || lower(s.code) WHERE s.code LIKE 'C%%'")
        cur.execute("""
            INSERT INTO custody_therapyorder (recipient_id, recipient_weight_kg, indication, status, coi, ordered_at,
                   accepted_at, accepted_by_id, ordered_by_id, product_id, site_id, treating_site_id)
            SELECT 'PT-' || n, 70.0, 'r/r LBCL', 'accepted', 'CC' || lpad(n::text, 12, '0'),
                   %(start)s + make_interval(secs => %(span)s * n / %(n)s),
                   %(start)s + make_interval(secs => %(span)s * n / %(n)s),
                   %(someone)s, %(someone)s, %(product)s, s.id, s.id
              FROM generate_series(0, %(n)s - 1) n JOIN bench_site s ON s.k = n %% %(sites)s""", params)
        cur.execute("""
            INSERT INTO custody_collection (din, flags, check_character, collection_started_at, collection_ended_at,
                   autologous, volume_ml, donor_tests, recorded_at, collection_site_id, recorded_by_id, order_id)
            SELECT 'C' || lpad(o.id::text, 12, '0'), '00', 'A', o.ordered_at, o.ordered_at, true, 250.0, '{}'::jsonb,
                   o.ordered_at, o.site_id, %(someone)s, o.id
              FROM custody_therapyorder o WHERE o.coi LIKE 'CC%%'""", params)
        cur.execute("""
            INSERT INTO manufacturing_batch (reference, status, origin, started_at, ended_at, end_reason, collection_id,
                   masterfile_version_id, order_id, site_id, started_by_id, unit_id)
            SELECT 'CB-' || lpad(o.id::text, 9, '0'), CASE WHEN o.id %% 25 = 0 THEN 'aborted' ELSE 'completed' END,
                   'demo_history', o.ordered_at + interval '1 day',
                   o.ordered_at + interval '1 day' + make_interval(secs => 777600 + (o.id %% 97) * 613.37), '',
                   c.id, %(version)s, o.id, o.site_id, s.operator, s.unit_id
              FROM custody_therapyorder o JOIN custody_collection c ON c.order_id = o.id
              JOIN bench_site s ON s.id = o.site_id WHERE o.coi LIKE 'CC%%'""", params)
        if skeleton:  # the batches alone (--skeleton): the postings' read path at full size, built in minutes
            cur.execute("ANALYZE")
            return {"manufacturing_batch": batches}
        cur.execute("""
            INSERT INTO manufacturing_stepexecution (position, step_id, unit_operation, status, started_at,
                   performed_at, verified_at, skip_reason, notes, batch_id, performed_by_id, started_by_id,
                   verified_by_id)
            SELECT p, 'step-' || p, 'op', 'complete', b.started_at + make_interval(hours => p * 20),
                   b.started_at
                     + make_interval(hours => p * 20, secs => 1200 + (b.id * 7 + p * 131) %% 5400 + 0.37),
                   CASE WHEN p %% 2 = 0 THEN b.started_at + make_interval(hours => p * 20 + 2) END, '', '', b.id,
                   s.operator, s.operator, CASE WHEN p %% 2 = 0 THEN s.manager END
              FROM manufacturing_batch b JOIN bench_site s ON s.id = b.site_id
             CROSS JOIN generate_series(0, %(steps)s - 1) p
             WHERE b.reference LIKE 'CB-%%'""", params)
        cur.execute("""
            INSERT INTO manufacturing_materialuse (material_code, quantity, recorded_at, lot_id, step_id)
            SELECT code, 1 + (st.id %% 3), st.performed_at, l.id, st.id
              FROM unnest(%(bill)s::text[]) WITH ORDINALITY AS m(code, k)
              JOIN manufacturing_stepexecution st ON st.position = m.k - 1
              JOIN manufacturing_batch b ON b.id = st.batch_id AND b.reference LIKE 'CB-%%'
              JOIN manufacturing_materiallot l ON l.site_id = b.site_id AND l.material_code = m.code""", params)
        cur.execute("""
            INSERT INTO manufacturing_qcresult (attribute_id, value_number, value_text, unit, conforms, method,
                   tested_at, entered_at, correction_reason, batch_id, entered_by_id)
            SELECT a, 80, '', '%%', true, 'bench', b.ended_at, b.ended_at, '', b.id, %(someone)s
              FROM manufacturing_batch b CROSS JOIN unnest(%(attributes)s::text[]) a
             WHERE b.reference LIKE 'CB-%%'""", params)
        cur.execute("""
            INSERT INTO manufacturing_qcresult (attribute_id, value_number, value_text, unit, conforms, method,
                   tested_at, entered_at, correction_reason, batch_id, entered_by_id, corrects_id)
            SELECT r.attribute_id, 81, '', '%%', true, 'bench', r.tested_at, r.entered_at, 'typing slip', r.batch_id,
                   r.entered_by_id, r.id
              FROM manufacturing_qcresult r WHERE r.batch_id %% 20 = 0 AND r.method = 'bench'""", params)
        cur.execute("""
            INSERT INTO custody_shipment (leg, logger_id, dispatched_at, created_by_id, order_id)
            SELECT leg, 'LOG-' || o.id, o.ordered_at, %(someone)s, o.id
              FROM custody_therapyorder o CROSS JOIN unnest(ARRAY['apheresis', 'fresh_product']) leg
             WHERE o.coi LIKE 'CC%%'""", params)
        cur.execute("""
            INSERT INTO release_certification (decision, reason, checklist, checklist_hash, decided_at, batch_id, qp_id)
            SELECT 'released', 'bench', '{}'::jsonb, repeat('0', 64), b.ended_at + interval '2 days', b.id, %(someone)s
              FROM manufacturing_batch b WHERE b.reference LIKE 'CB-%%' AND b.status = 'completed'
               AND b.id %% 20 <> 7""", params)
        cur.execute("ANALYZE")
        counts = {}
        for table in ("manufacturing_batch", "manufacturing_stepexecution", "manufacturing_materialuse",
                      "manufacturing_qcresult", "custody_shipment", "release_certification"):
            cur.execute(f"SELECT count(*) FROM {table}")  # the names above
            counts[table] = cur.fetchone()[0]
    return counts


def touch(batches: list[Any]) -> None:
    """A day's records on ``batches``, each through the ledger's service: a QC result on the first 60% of them, a
    shipment of the order on the rest (each a cost input: a QC line, a logistics line)."""
    from django.db import transaction
    from django.utils import timezone

    from pocare.accounts.models import User
    from pocare.custody.events import CustodyEvent
    from pocare.custody.models import Shipment
    from pocare.demo import costs as costs_demo
    from pocare.ledger.services import event_record
    from pocare.manufacturing.events import ManufacturingEvent
    from pocare.manufacturing.models import QcResult

    someone = User.objects.get(username="qa")
    attribute = next(iter(costs_demo.QC))
    now = timezone.now()
    for i, batch in enumerate(batches):
        with transaction.atomic():
            if i < len(batches) * 6 // 10:
                qc = QcResult.objects.create(attribute_id=attribute, value_number=80, value_text="", unit="%",
                                             conforms=True, method="bench-day", tested_at=now, entered_at=now,
                                             correction_reason="", batch=batch, entered_by=someone)
                event_record(actor=someone, event_type=ManufacturingEvent.QC_RESULT_RECORDED, site=batch.site,
                             obj=qc, reason="bench: a day's QC result")
            else:
                shipment = Shipment.objects.create(order_id=batch.order_id, leg="fresh_product", logger_id="LOG-DAY",
                                                   dispatched_at=now, created_by=someone)
                event_record(actor=someone, event_type=CustodyEvent.SHIPMENT_CREATED, site=batch.site,
                             obj=shipment, reason="bench: a day's shipment")


def postings_bench(scope: Any, per_batch_records: list[Any], expected: list[tuple[Any, ...]], runs: int
                   ) -> list[tuple[str, list[float], str]]:
    """(a) post every batch from scratch, (b) the refresh after a day's events on 100 batches, (c) the roll-up
    from postings (and with 100 batches pending); each checked for exactness before it is timed."""
    import datetime as dt

    from django.db import connection

    from pocare.costs import postings, rollup
    from pocare.costs.models import BatchCost

    def posted_cents() -> dict[int, tuple[Any, ...]]:
        columns = [f"{key}_cents" for key in rollup.CATEGORY_KEYS]
        return {row[0]: tuple(row[1:]) for row in BatchCost.objects.values_list("batch_id", *columns, "unpriced")}

    def cents(t: Any) -> tuple[Any, ...]:
        return (*(int(t.amounts[key] * 100) for key in rollup.CATEGORY_KEYS), t.unpriced)

    def rolled(found: list[Any]) -> list[tuple[Any, ...]]:
        return [(g.site_code, g.month, g.batches, g.amounts, g.unpriced) for g in found]

    no_grace = dt.timedelta(0)
    scratch_s = []
    for _ in range(2):
        with connection.cursor() as cur:
            cur.execute("TRUNCATE costs_batchcost, costs_postingstate")
        t = time.perf_counter()
        run = postings.postings_refresh(grace=no_grace)
        scratch_s.append(time.perf_counter() - t)
        assert run.posted == len(per_batch_records), (run.posted, len(per_batch_records))
    found = posted_cents()
    differ = [t.reference for t in per_batch_records if found[t.pk] != cents(t)]
    assert not differ, f"{len(differ)} postings differ from the records, e.g. {differ[:3]}"

    ids = list(scope.order_by("pk").values_list("pk", flat=True))
    step = max(1, len(ids) // 100)

    def day(round_: int) -> list[Any]:
        """100 batches spread over the network and its years, a different 100 each round."""
        return list(scope.select_related("site").filter(pk__in=ids[round_::step][:100]).order_by("pk"))

    refresh_s, pending_s, rollup_s = [], [], []
    for round_ in range(3):
        touched = day(round_)
        touch(touched)
        t = time.perf_counter()
        run = postings.postings_refresh(grace=no_grace)
        refresh_s.append(time.perf_counter() - t)
        assert run.posted == len(touched), (run.posted, len(touched))
        again = {t.pk: cents(t) for t in rollup.batch_totals(scope.filter(pk__in=[b.pk for b in touched]),
                                                            method="records")}
        found = posted_cents()
        assert all(found[pk] == c for pk, c in again.items()), "a touched posting differs from its records"
    sql_now = rolled(rollup.site_month_totals(scope, method="sql"))
    assert sql_now != expected, "the day's records changed the figures"
    assert rolled(rollup.site_month_totals(scope, method="postings")) == sql_now, "postings ≠ SQL roll-up"
    for _ in range(max(3, runs)):
        t = time.perf_counter()
        rollup.site_month_totals(scope, method="postings")
        rollup_s.append(time.perf_counter() - t)
    for round_ in range(3, 6):
        touch(day(round_))
        t = time.perf_counter()
        result = postings.site_month_postings(scope)
        pending_s.append(time.perf_counter() - t)
        assert result.posted_now == 100, result.posted_now
        # Posted in the call, they are current to the newest event older than the grace: the refresh (the
        # hourly job) moves the watermark past the day's events, as it would.
        postings.postings_refresh(grace=no_grace)
    assert rolled(postings.site_month_postings(scope).rows) == rolled(rollup.site_month_totals(scope, method="sql"))
    return [("(a) cost postings of every batch from scratch (`postings_refresh`, one statement)", scratch_s, "—"),
            ("(b) refresh after a day's events on 100 batches (`postings_refresh`)", refresh_s, "—"),
            (f"(c) roll-up from postings (`site_month_totals(method=\"postings\")`, {len(expected):,} rows)",
             rollup_s, f"< {TARGET_S:.0f} s: {'met' if max(rollup_s) < TARGET_S else 'MISSED'}"),
            ("(c′) the same with 100 batches pending, posted in the call", pending_s,
             f"< {TARGET_S:.0f} s: {'met' if max(pending_s) < TARGET_S else 'MISSED'}")]


def skeleton_bench(scope: Any, batches: int, runs: int, built_s: float) -> None:
    """``--skeleton``: every batch posted (no lines: equipment, facility and review only), the roll-up from
    postings checked against the SQL roll-up, then timed. The read path (postings, batches, sites) is as large
    as the full network's; what posting a full batch costs is measured by the full run."""
    import datetime as dt

    from pocare.costs import postings, rollup

    def rolled(found: list[Any]) -> list[tuple[Any, ...]]:
        return [(g.site_code, g.month, g.batches, g.amounts, g.unpriced) for g in found]

    t = time.perf_counter()
    run = postings.postings_refresh(grace=dt.timedelta(0))
    post_s = time.perf_counter() - t
    assert run.posted == batches, (run.posted, batches)
    t = time.perf_counter()
    by_sql = rolled(rollup.site_month_totals(scope, method="sql"))
    sql_s = time.perf_counter() - t
    assert rolled(rollup.site_month_totals(scope, method="postings")) == by_sql, "postings ≠ SQL roll-up"
    times = []
    for _ in range(max(3, runs)):
        t = time.perf_counter()
        rollup.site_month_totals(scope, method="postings")
        times.append(time.perf_counter() - t)
    print(f"Skeleton: {batches:,} batches without lines (built in {built_s:.0f} s), load average "
          f"{os.getloadavg()[0]:.2f}, commit "
          + subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                           cwd=ROOT).stdout.strip())
    print("| measurement | median s | max s | runs | target |\n|---|---:|---:|---:|---|")
    print(f"| posting every batch (no lines) | {post_s:.2f} | {post_s:.2f} | 1 | — |")
    print(f"| SQL roll-up (no lines), {len(by_sql):,} rows | {sql_s:.2f} | {sql_s:.2f} | 1 | — |")
    print(f"| (c) roll-up from postings | {statistics.median(times):.2f} | {max(times):.2f} | {len(times)} "
          f"| < {TARGET_S:.0f} s: {'met' if max(times) < TARGET_S else 'MISSED'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 batches")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database (to look at query plans)")
    parser.add_argument("--batches", type=int, default=0, help="this many batches instead")
    parser.add_argument("--db", default=DB, help=f"the scratch database's name (default {DB})")
    parser.add_argument("--skeleton", action="store_true",
                        help="batches without steps, uses, results or shipments: time only the roll-up from postings "
                             "(checked against the SQL roll-up) at full size")
    args = parser.parse_args()
    batches, years = (10_000, 2) if args.quick else (250_000, 10)
    if args.batches:
        batches = args.batches
    url = scratch.prepare("postgresql", args.db)
    os.environ.update({"DATABASE_URL": url, "POCARE_DEBUG": "0", "DJANGO_SETTINGS_MODULE": "pocare.settings"})
    import django

    django.setup()
    from pocare.costs import rollup
    from pocare.manufacturing.models import Batch

    t0 = time.perf_counter()
    counts = build(batches, years, skeleton=args.skeleton)
    built_s = time.perf_counter() - t0
    scope = Batch.objects.filter(reference__startswith="CB-")
    if args.skeleton:
        skeleton_bench(scope, batches, args.runs, built_s)
        if not args.keep:
            scratch.drop("postgresql", args.db)
        return

    def rolled(found: list[Any]) -> list[tuple[Any, ...]]:
        return [(g.site_code, g.month, g.batches, g.amounts, g.unpriced) for g in found]

    ours = rollup.site_month_totals(scope, method="sql")  # warm-up
    # The baseline once (at 250,000 batches a quarter of an hour): its batches' totals, then summed by site ×
    # month as site_month_totals(method="records") sums them.
    t = time.perf_counter()
    per_batch_records = rollup.batch_totals(scope, method="records")
    theirs = rollup.site_months_of(per_batch_records)
    baseline_s = time.perf_counter() - t
    per_batch_sql = rollup.batch_totals(scope, method="sql")
    assert len(per_batch_sql) == len(per_batch_records) == batches
    differ = [(a.reference, a.amounts, b.amounts) for a, b in zip(per_batch_sql, per_batch_records, strict=True)
              if (a.reference, a.amounts, a.unpriced) != (b.reference, b.amounts, b.unpriced)]
    assert not differ, f"{len(differ)} batches differ, e.g. {differ[:2]}"
    assert rolled(ours) == rolled(theirs), "the site × month roll-ups differ"
    times, per_batch_times = [], []
    for _ in range(args.runs):
        t = time.perf_counter()
        rollup.site_month_totals(scope, method="sql")
        times.append(time.perf_counter() - t)
    for _ in range(max(1, args.runs // 2)):
        t = time.perf_counter()
        rollup.batch_totals(scope, method="sql")
        per_batch_times.append(time.perf_counter() - t)
    posting = postings_bench(scope, per_batch_records, rolled(ours), args.runs)
    total = sum((x.total for x in ours), Decimal(0))
    machine = {"cpu": platform.processor() or platform.machine(), "cores": str(os.cpu_count()),
               "python": platform.python_version(),
               "postgresql": subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip(),
               "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                        cwd=ROOT).stdout.strip(),
               "load average (1 min)": f"{os.getloadavg()[0]:.2f}"}
    lines = ["Machine:", *[f"- {k}: {v}" for k, v in machine.items()], "",
             f"Network: {SITES} sites × {years} years: " + ", ".join(f"{v:,} {k.split('_', 1)[1]}"
                                                                     for k, v in counts.items())
             + f" (built in {built_s:.0f} s). Total cost {total:,.2f} EUR; every batch the same cents both ways.", "",
             "| measurement | median s | max s | runs | target |", "|---|---:|---:|---:|---|",
             f"| roll-up by site × month in SQL (`site_month_totals`, {len(ours):,} rows) "
             f"| {statistics.median(times):.2f} | {max(times):.2f} | {len(times)} | < {TARGET_S:.0f} s: "
             f"{'met' if max(times) < TARGET_S else 'MISSED'} |",
             f"| every batch's amounts in SQL (`batch_totals(method=\"sql\")`, {batches:,} rows to Python) "
             f"| {statistics.median(per_batch_times):.2f} | {max(per_batch_times):.2f} | {len(per_batch_times)} | — |",
             f"| baseline: records read in chunks and priced by `compute` | {baseline_s:.2f} | {baseline_s:.2f} "
             "| 1 | — |",
             *[f"| {what} | {statistics.median(ts):.2f} | {max(ts):.2f} | {len(ts)} | {target} |"
               for what, ts, target in posting]]
    print("\n".join(lines))
    if not args.keep:
        scratch.drop("postgresql", args.db)


if __name__ == "__main__":
    main()
