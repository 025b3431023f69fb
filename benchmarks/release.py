"""Benchmark of the release checklist (``pocare.release.checklist.release_checklist``): its latency
for a completed batch of 40 steps with 20 QC results and 5 deviations, and its number of queries
for the same batch shape at 10 and at 40 steps.

The data are made honestly, through the services, with the set-up of ``benchmarks/ebr.py``: the
demo v1 document as a synthetic product whose process is cut to 10 or extended to 40 steps and
whose specification has 20 attributes, loaded, reviewed, approved and made effective through the
master-file services, MAD authorized and its people trained; a therapy order received at MAD and
its batch started, every step recorded (and verified where the master file asks) with good values
through ``manufacturing.services``, the 20 QC results entered by the site's QC analyst, 5
deviations raised on the batch by its operator, the site's audit trail reviewed and signed by the
manager, and the review by exception signed by the QC analyst.

Then, per backend: the checklist is evaluated N times (default 200) after two warm-up runs;
p50 / p95 / max in milliseconds; the queries of one evaluation counted with
``CaptureQueriesContext`` for the 10-step and the 40-step batch.

Usage::

    .venv/bin/python benchmarks/release.py                      # both backends, about 2 minutes
    .venv/bin/python benchmarks/release.py --backend sqlite
    .venv/bin/python benchmarks/release.py --runs 50            # quicker
    .venv/bin/python benchmarks/release.py --backend postgresql --breakdown --db-name my_bench_release

Environment: ``BENCH_PG_URL`` (default ``postgres://postgres@127.0.0.1:5432``); the script
(re)creates and drops the scratch database ``pocare_bench_release`` (or ``--db-name``) there (never test_postgres)
and the SQLite file ``var/bench/release.sqlite3``. Nothing asserts on timing; the target (under
50 ms, queries not growing with steps) is reported as met or missed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scratch
from ledger import BENCH_DIR, ROOT, machine_info

sys.path.insert(0, str(ROOT))  # tests.* helpers build the world as the tests do

# var/bench/release.sqlite3, or a PostgreSQL database of its own
DB_NAMES = {"sqlite": "release", "postgresql": "pocare_bench_release"}
SHAPES = (10, 40)
DEVIATIONS = 5
TARGET_MS = 50.0
BREAKDOWN = False  # --breakdown (inherited by the forked backend process)


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def build(n_steps: int) -> Any:
    """A completed batch of ``n_steps`` steps with its QC results, deviations and reviews."""
    from tests.manufacturing.helpers import creds, user

    import ebr
    from pocare.quality.services import deviation_raise
    from pocare.release.services import exceptions_review_sign
    from pocare.trail.services import trail_review_sign

    version = ebr.load_product(n_steps)
    batch = ebr.start_batch(version.product)
    ebr.fill_batch(batch, n_steps)
    batch.refresh_from_db()
    assert batch.status == "completed", batch.status
    ebr.qc_results(batch)
    for i in range(DEVIATIONS):
        deviation_raise(actor=user("operator.mad"), site=batch.site, title=f"Benchmark deviation {i + 1}",
                        description="Raised by hand for the benchmark.", batch=batch)
    trail_review_sign(actor=user("manager.mad"), chain="MAD", comment="benchmark", credentials=creds("manager.mad"))
    exceptions_review_sign(actor=user("qc.mad"), batch=batch, comment="benchmark", credentials=creds("qc.mad"))
    return batch


def run_backend(backend: str, url: str, runs: int, out: Any) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["POCARE_VAR_DIR"] = str(BENCH_DIR)
    os.environ["POCARE_DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pocare.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.hashers import get_hashers, get_hashers_by_algorithm
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from tests.manufacturing.helpers import lots, world

    import ebr
    from pocare.demo.people import load_people
    from pocare.manufacturing.models import Batch
    from pocare.release.checklist import release_checklist

    settings.PASSWORD_HASHERS = ebr.FAST  # the set-up signs hundreds of times; nothing measured signs
    get_hashers.cache_clear()  # type: ignore[attr-defined]
    get_hashers_by_algorithm.cache_clear()  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    load_people(password=ebr.PASSWORD)
    v1 = world()
    lots("MAD", v1)
    ebr.extra_units(2)
    batches = {n: build(n) for n in SHAPES}
    setup_s = time.perf_counter() - t0
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
    res: dict[str, Any] = {"backend": backend, "setup_s": setup_s, "queries": {}, "states": {}}
    for n, b in batches.items():
        batch = Batch.objects.select_related("site", "unit", "masterfile_version__product", "order",
                                             "collection").get(pk=b.pk)
        release_checklist(batch)
        release_checklist(batch)
        with CaptureQueriesContext(connection) as ctx:
            checklist = release_checklist(batch)
        res["queries"][n] = len(ctx.captured_queries)
        res["states"][n] = {ln.id: ln.state for ln in checklist.lines}
        res.setdefault("counts", {})[n] = {"steps": batch.steps.count(), "results": batch.qc_results.count(),
                                           "deviations": batch.deviations.count()}
    batch = Batch.objects.select_related("site", "unit", "masterfile_version__product", "order",
                                         "collection").get(pk=batches[40].pk)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        release_checklist(batch)
        times.append(1000 * (time.perf_counter() - t))
    res.update({"runs": runs, "p50_ms": pct(times, 50), "p95_ms": pct(times, 95), "max_ms": max(times),
                "load": os.getloadavg()[0]})
    if BREAKDOWN:
        res["breakdown"] = breakdown(batch, max(20, runs // 5))
    print(f"  {backend:<10} set-up {setup_s:.0f} s; 40 steps: p50 {res['p50_ms']:.1f} ms, p95 {res['p95_ms']:.1f} ms; "
          f"queries 10/40 steps: {res['queries'][10]}/{res['queries'][40]}", flush=True)
    connection.close()
    out.put(res)


LINES = ("masterfile", "steps", "windows", "people", "units", "materials", "results_line", "deviations", "custody",
         "alarms", "audit_trail", "exceptions_review", "changed")


def breakdown(batch: Any, runs: int) -> dict[str, tuple[float, int]]:
    """Where an evaluation's time goes: ``batch_page`` (which the checklist reads its records from)
    and each line on its own, as p50 ms over ``runs`` evaluations and the queries of one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from pocare.manufacturing.selectors import batch_page
    from pocare.release import checklist as cl

    page = batch_page(batch)
    evidence = cl._Evidence(batch, page, reverse("manufacturing:batch", args=[batch.reference]),
                            cl._Rows([batch], {batch.pk: page}))
    # The rows every line reads beyond the batch page, loaded once per evaluation (for a whole queue page).
    parts: dict[str, Any] = {"batch_page": lambda: batch_page(batch),
                             "rows": lambda: cl._Rows([batch], {batch.pk: page})}
    parts.update({name: getattr(evidence, name) for name in LINES})
    out = {}
    for name, part in parts.items():
        evidence.results = []  # results_line appends to it
        with CaptureQueriesContext(connection) as ctx:
            part()
        times = []
        for _ in range(runs):
            evidence.results = []
            t = time.perf_counter()
            part()
            times.append(1000 * (time.perf_counter() - t))
        out[name] = (pct(times, 50), len(ctx.captured_queries))
    return out


def report(machine: dict[str, str], results: list[dict[str, Any]]) -> str:
    lines = ["Machine:", *[f"- {k}: {v}" for k, v in machine.items()], ""]
    counts = results[0]["counts"][40]
    lines += [f"Checklist of a completed batch: {counts['steps']} steps, {counts['results']} QC results, "
              f"{counts['deviations']} deviations ({results[0]['runs']} evaluations after 2 warm-up runs)", "",
              "| backend | p50 ms | p95 ms | max ms | queries, 10 steps | queries, 40 steps | target < 50 ms | "
              "load average (1 min) |",
              "|---|---:|---:|---:|---:|---:|---|---:|"]
    for r in results:
        verdict = (f"p50 {'met' if r['p50_ms'] < TARGET_MS else 'MISSED'}, "
                   f"p95 {'met' if r['p95_ms'] < TARGET_MS else 'MISSED'}")
        lines.append(f"| {r['backend']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['max_ms']:.1f} | "
                     f"{r['queries'][10]} | {r['queries'][40]} | {verdict} | {r['load']:.2f} |")
    lines.append("")
    for r in results:
        if "breakdown" in r:
            lines += ["", f"Breakdown, {r['backend']} (p50 ms of each part alone, queries of one):", "",
                      "| part | p50 ms | queries |", "|---|---:|---:|"]
            lines += [f"| {name} | {ms:.1f} | {q} |" for name, (ms, q) in r["breakdown"].items()]
            lines.append("")
    for r in results:
        q = r["queries"]
        lines.append(f"- {r['backend']}: queries {'constant' if q[10] == q[40] else 'GROW'} with the number of steps "
                     f"({q[10]} at 10, {q[40]} at 40); line states at 40 steps: "
                     + ", ".join(f"{k} {v}" for k, v in r["states"][40].items()))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--runs", type=int, default=200, help="evaluations timed per backend (default 200)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    parser.add_argument("--db-name", default=None,
                        help="scratch database name (default pocare_bench_release / release.sqlite3): a name of "
                             "your own keeps two runs on one server apart")
    parser.add_argument("--breakdown", action="store_true", help="also time batch_page and each line alone")
    args = parser.parse_args()
    global BREAKDOWN
    BREAKDOWN = args.breakdown
    if args.db_name:
        DB_NAMES.update(sqlite=args.db_name, postgresql=args.db_name)
    import ebr

    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = []
    try:
        for backend in backends:
            url = scratch.prepare(backend, DB_NAMES[backend])
            results.append(ebr.in_process(run_backend, backend, url, args.runs))
    finally:
        if not args.keep:
            for backend in backends:
                scratch.drop(backend, DB_NAMES[backend])
    print()
    print(report(machine_info(), results))


if __name__ == "__main__":
    main()
