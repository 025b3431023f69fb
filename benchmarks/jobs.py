"""Benchmark of the job queue (issue 16): jobs per second through ``pocare.jobs`` — enqueue, then
run trivial jobs with real ``pocare worker`` processes — on SQLite and PostgreSQL, against the
strongest simple baseline in the same run.

On a scratch database per backend (SQLite under var/bench/, PostgreSQL ``pocare_bench_jobs``):

1. **Enqueue**: ``--jobs`` calls of ``job_enqueue`` (the trivial task ``pocare.jobs.builtin.noop``),
   each in its own transaction, as a service that asks for a job does. Jobs per second.
2. **Run**: ``pocare worker --burst --no-schedule`` processes (1, and 2 on PostgreSQL; 2 on SQLite for
   the record) drain the queue. Jobs per second = jobs / (last ``finished_at`` − first ``started_at``),
   so process start-up is not counted; every job is checked done exactly once.
3. **Baseline**: the same two steps on a bare queue table with no framework — ``INSERT`` per
   transaction, then worker processes looping on ``BEGIN; SELECT id … ORDER BY id LIMIT 1 FOR UPDATE
   SKIP LOCKED; UPDATE … SET status='running'; COMMIT`` (SQLite: ``BEGIN IMMEDIATE`` and the same
   SELECT without FOR UPDATE), call a no-op, ``UPDATE … SET status='done'``: the claim-then-finish
   shape of any queue that can report a running job, in raw psycopg / sqlite3.

What the difference buys (docs/jobs.md): the lease and its heartbeat thread, the reaper and the
worker's announcement each loop, the ORM, the task lookup, retries with backoff.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/jobs.py                 # both backends, ~2 minutes
    PYTHONPATH=src .venv/bin/python benchmarks/jobs.py --jobs 300 --backend sqlite   # smoke

Nothing asserts on timing (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ledger import BENCH_DIR, ROOT, machine_info
from scratch import drop, prepare

DB = "pocare_bench_jobs"
CTX = mp.get_context("fork")


# --- POCare's queue ---------------------------------------------------------------------------------

def pocare_enqueue(n: int) -> float:
    from django.db import transaction

    from pocare.jobs.services import job_enqueue

    started = time.perf_counter()
    for i in range(n):
        with transaction.atomic():
            job_enqueue(task="pocare.jobs.builtin.noop", kwargs={"i": i})
    return n / (time.perf_counter() - started)


def pocare_run(url: str, workers: int, n: int) -> dict[str, Any]:
    from django.db import connection
    from django.db.models import Count, Max, Min

    from pocare.jobs.models import Job, JobStatus

    connection.close()
    env = {**os.environ, "DATABASE_URL": url, "POCARE_DEBUG": "0"}
    procs = [subprocess.Popen([sys.executable, "-m", "pocare.cli", "worker", "--burst", "--no-schedule",
                               "--poll", "0.01", "--name", f"bench-{k}", "-v", "0"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL) for k in range(workers)]
    for p in procs:
        p.wait(timeout=1800)
    done = Job.objects.filter(status=JobStatus.DONE)
    span = done.aggregate(first=Min("started_at"), last=Max("finished_at"))
    tries = set(done.values_list("tries", flat=True))
    per_worker = dict(done.order_by().values_list("worker").annotate(c=Count("pk")))
    assert done.count() == n and tries == {1}, (done.count(), tries)
    seconds = (span["last"] - span["first"]).total_seconds()
    Job.objects.all().delete()
    return {"jobs_per_s": n / seconds, "seconds": seconds, "per_worker": per_worker}


# --- the baseline: a bare queue table ---------------------------------------------------------------

def _connect(backend: str, url: str) -> Any:
    if backend == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn
    import psycopg

    return psycopg.connect(url, autocommit=True)


def _noop(payload: str) -> str:
    return payload


def baseline_setup(backend: str, url: str) -> None:
    conn = _connect(backend, url)
    key = "INTEGER PRIMARY KEY AUTOINCREMENT" if backend == "sqlite" else "BIGSERIAL PRIMARY KEY"
    conn.execute("DROP TABLE IF EXISTS bench_queue")
    conn.execute(f"CREATE TABLE bench_queue (id {key}, status VARCHAR(12) NOT NULL, payload TEXT NOT NULL, "
                 "worker VARCHAR(40), result TEXT)")
    conn.execute("CREATE INDEX bench_queue_status ON bench_queue (status, id)")
    conn.close()


def baseline_enqueue(backend: str, url: str, n: int) -> float:
    conn = _connect(backend, url)
    ph = "?" if backend == "sqlite" else "%s"
    started = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE" if backend == "sqlite" else "BEGIN")
        conn.execute(f"INSERT INTO bench_queue (status, payload) VALUES ('queued', {ph})", (json.dumps({"i": i}),))
        conn.execute("COMMIT")
    rate = n / (time.perf_counter() - started)
    conn.close()
    return rate


def _baseline_worker(backend: str, url: str, name: str) -> None:
    conn = _connect(backend, url)
    ph = "?" if backend == "sqlite" else "%s"
    lock = "" if backend == "sqlite" else " FOR UPDATE SKIP LOCKED"
    while True:
        conn.execute("BEGIN IMMEDIATE" if backend == "sqlite" else "BEGIN")
        row = conn.execute(f"SELECT id, payload FROM bench_queue WHERE status = 'queued' ORDER BY id LIMIT 1{lock}"
                           ).fetchone()
        if row is None:
            conn.execute("COMMIT")
            break
        conn.execute(f"UPDATE bench_queue SET status = 'running', worker = {ph} WHERE id = {ph}", (name, row[0]))
        conn.execute("COMMIT")
        result = _noop(row[1])
        conn.execute(f"UPDATE bench_queue SET status = 'done', result = {ph} WHERE id = {ph}", (result, row[0]))
    conn.close()


def baseline_run(backend: str, url: str, workers: int, n: int) -> dict[str, Any]:
    procs = [CTX.Process(target=_baseline_worker, args=(backend, url, f"raw-{k}")) for k in range(workers)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    seconds = time.perf_counter() - started
    conn = _connect(backend, url)
    done = conn.execute("SELECT count(*) FROM bench_queue WHERE status = 'done'").fetchone()[0]
    conn.execute("DELETE FROM bench_queue")
    conn.close()
    assert done == n, done
    return {"jobs_per_s": n / seconds, "seconds": seconds}


# --- one backend in its own process -----------------------------------------------------------------

def one_backend(backend: str, n: int, worker_counts: list[int]) -> dict[str, Any]:
    url = prepare(backend, DB)
    os.environ["DATABASE_URL"] = url
    os.environ["POCARE_VAR_DIR"] = str(BENCH_DIR)
    os.environ["POCARE_DEBUG"] = "0"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pocare.settings")
    import django

    django.setup()
    from django.db import connection

    out: dict[str, Any] = {"jobs": n, "pocare": {}, "baseline": {}}
    baseline_setup(backend, url)
    for workers in worker_counts:
        out["pocare"][f"enqueue_{workers}"] = pocare_enqueue(n)
        out["pocare"][f"run_{workers}"] = pocare_run(url, workers, n)
        connection.close()
        out["baseline"][f"enqueue_{workers}"] = baseline_enqueue(backend, url, n)
        out["baseline"][f"run_{workers}"] = baseline_run(backend, url, workers, n)
    connection.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--one", choices=["sqlite", "postgresql"], help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    args = parser.parse_args()
    counts = {"sqlite": [1, 2], "postgresql": [1, 2]}
    if args.one:
        print(json.dumps(one_backend(args.one, args.jobs, counts[args.one])))
        return
    info = machine_info()
    print("Machine:", ", ".join(f"{k} {v}" for k, v in info.items()))
    results: dict[str, Any] = {"machine": info}
    for backend in args.backend or ["sqlite", "postgresql"]:
        proc = subprocess.run([sys.executable, __file__, "--one", backend, "--jobs", str(args.jobs)],
                              capture_output=True, text=True, check=False)
        if proc.returncode:
            print(proc.stdout, proc.stderr, file=sys.stderr)
            raise SystemExit(proc.returncode)
        r = results[backend] = json.loads(proc.stdout.strip().splitlines()[-1])
        if not args.keep:
            drop(backend, DB)
        print(f"\n{backend}: {r['jobs']} trivial jobs")
        print(f"  {'':28} {'POCare jobs/s':>14} {'bare table jobs/s':>18}  POCare/bare")
        for key in r["pocare"]:
            ours = r["pocare"][key]["jobs_per_s"] if key.startswith("run") else r["pocare"][key]
            theirs = r["baseline"][key]["jobs_per_s"] if key.startswith("run") else r["baseline"][key]
            kind, workers = key.split("_")
            label = "enqueue (1 transaction each)" if kind == "enqueue" else f"run, {workers} worker(s)"
            if kind == "enqueue" and workers != "1":
                label += " again"
            print(f"  {label:28} {ours:14.0f} {theirs:18.0f}  {ours / theirs:10.2f}")
            if kind == "run":
                print(f"  {'':28} jobs per worker: {r['pocare'][key]['per_worker']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
