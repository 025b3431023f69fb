"""Benchmark of `pocare backup` and `pocare restore`: seconds per million ledger events, on SQLite
and PostgreSQL, against the plain tools on the same database in the same run.

For each backend a scratch database (``var/bench/pocare_bench_backup.sqlite3`` or the PostgreSQL
database ``pocare_bench_backup``) is migrated and filled with N valid ledger events (default
1,000,000; 9 chains; the generator of ``benchmarks/ledger.py``, loaded with COPY or executemany,
with matching chain heads), so that the restore's ``audit verify`` has a real trail to prove.
Then, timed one after another on that database:

1. **plain backup** — ``pg_dump --format=custom`` / ``sqlite3 DB ".backup FILE"``: the baseline;
2. **pocare backup** — ``backup_make()``: the dump in one snapshot with the manifest's counts and
   chain heads, then the tar with the dump's SHA-256;
3. **plain restore** — ``pg_restore`` (same ``--jobs``, ``--no-owner --no-privileges
   --exit-on-error``) into a new database / ``sqlite3 NEW ".restore FILE"``;
4. **pocare restore** — ``restore()`` into a new database: extract with the hash check, load into
   a staging database, count, ``pocare audit verify`` (a process of its own, Django start-up
   included), rename into place.

Both POCare steps run in this process (their Django start-up is not counted; ``pocare`` costs
about 1-3 s more from a shell); each step's phases are printed. The overhead is what the
manifest, the hash and the proof cost over the plain tools. ``--rounds 2`` runs each pair twice,
the second time in the other order; the table takes each step's best round. Before each step the
CPU the rest of the machine used for a second is printed (a shared machine). Nothing asserts on
timing.

Usage::

    .venv/bin/python benchmarks/backup.py                     # 1,000,000 events, both backends
    .venv/bin/python benchmarks/backup.py --events 100000 --backend sqlite    # smoke run
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from typing import Any

from ledger import BENCH_DIR, CTX, ROOT, _machine_busy, bench_people, django_setup, load_events, machine_info
from scratch import drop, prepare

DB = "pocare_bench_backup"
WORK = BENCH_DIR / "backup"
# `pocare restore` verifies in a `pocare audit verify` process: it must import this checkout.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))


def fill(n_events: int) -> None:
    """N valid events on 9 chains, their heads, 20 people; then ANALYZE (benchmarks/ledger.py's loader)."""
    load_events(n_events, bench_people())


def timed(step: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = step()
    return time.perf_counter() - started, result


def run(backend: str, n_events: int, jobs: int, rounds: int, out: Any) -> None:
    """Coordinator process for one backend: fill, then time the four steps ``rounds`` times."""
    url = prepare(backend, DB)
    django_setup(url)
    from django.db import connection, connections

    from pocare.ops import databases as dbs
    from pocare.ops.backup import backup_make, restore
    from pocare.ops.databases import Database

    seconds, _ = timed(lambda: fill(n_events))
    print(f"  {backend:<10} filled {n_events:,} events in {seconds:.0f} s", flush=True)
    source = Database.from_settings(connection.settings_dict)
    connections.close_all()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    plain_dump = WORK / ("plain.pgdump" if backend == "postgresql" else "plain.sqlite3")

    def target(name: str) -> Database:
        return (source.renamed(f"{DB}_{name}") if backend == "postgresql"
                else Database(vendor="sqlite", name=str(WORK / f"restored-{name}.sqlite3")))

    def clear(db: Database) -> None:
        if backend == "postgresql":
            dbs.pg_drop(db)
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(db.name + suffix).unlink(missing_ok=True)

    def plain_backup() -> None:
        plain_dump.unlink(missing_ok=True)
        if backend == "postgresql":
            command = [dbs.pg_binary("pg_dump"), "--format=custom", f"--file={plain_dump}", "--no-password"]
            subprocess.run(command, env=source.libpq_env(), check=True)
        else:
            subprocess.run(["sqlite3", source.name, f".backup '{plain_dump}'"], check=True)

    def plain_restore() -> None:
        into = target("plain")
        clear(into)
        if backend == "postgresql":
            dbs.pg_create(into)
            subprocess.run([dbs.pg_binary("pg_restore"), f"--dbname={into.name}", "--no-owner", "--no-privileges",
                            "--exit-on-error", f"--jobs={jobs}", "--no-password", str(plain_dump)],
                           env=into.libpq_env(), check=True)
        else:
            subprocess.run(["sqlite3", into.name, f".restore '{plain_dump}'"], check=True)

    archive = WORK / "pocare.tar"

    def pocare_backup() -> Any:
        archive.unlink(missing_ok=True)
        return backup_make(database=source, archive=archive)

    def pocare_restore() -> Any:
        into = target("restored")
        clear(into)
        return restore(archive=archive, target=into, replace=False, confirm=lambda q: False, jobs=jobs)

    results: dict[str, list[float]] = {"plain backup": [], "pocare backup": [], "plain restore": [],
                                       "pocare restore": []}
    phases: dict[str, dict[str, float]] = {}
    for r in range(rounds):
        pairs = [("plain backup", plain_backup), ("pocare backup", pocare_backup),
                 ("plain restore", plain_restore), ("pocare restore", pocare_restore)]
        if r % 2:  # the second round in the other order, so a change in machine load hits both alike
            pairs = [pairs[1], pairs[0], pairs[3], pairs[2]]
        for name, step in pairs:
            busy = _machine_busy()
            time.sleep(1.0)
            other = _machine_busy() - busy  # cores the rest of the machine kept busy just before
            elapsed, done = timed(step)
            results[name].append(elapsed)
            if done is not None:
                phases[name] = done.phases
                if name == "pocare restore":
                    assert done.verify["ok"] and done.verify["events"] == n_events, done.verify
                    phases[name] = {**done.phases, "of which verify_all itself": done.verify["seconds"]}
            print(f"  {backend:<10} round {r + 1}: {name:<15} {elapsed:7.1f} s (other load before: {other:.2f} cores)"
                  + (f"  ({', '.join(f'{k} {v:.1f} s' for k, v in done.phases.items())})" if done else ""),
                  flush=True)
    sizes = {"plain": plain_dump.stat().st_size, "pocare": archive.stat().st_size}
    if backend == "sqlite":
        sizes["database"] = Path(source.name).stat().st_size
    for name in ("plain", "restored"):
        clear(target(name))
    shutil.rmtree(WORK, ignore_errors=True)
    out.put({"backend": backend, "events": n_events, "seconds": results, "phases": phases, "sizes": sizes})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="pg_restore --jobs")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    args = parser.parse_args(argv)
    if not 1_000 <= args.events <= 20_000_000:
        parser.error("--events: between 1,000 and 20,000,000")
    rows = []
    for backend in args.backend or ["sqlite", "postgresql"]:
        queue = CTX.Queue()
        proc = CTX.Process(target=run, args=(backend, args.events, args.jobs, args.rounds, queue))
        proc.start()
        while proc.is_alive() or not queue.empty():  # a coordinator that died puts nothing
            try:
                rows.append(queue.get(timeout=5))
                break
            except Empty:
                continue
        proc.join()
        if not args.keep:
            drop(backend, DB)
        if proc.exitcode:
            raise SystemExit(f"{backend} failed with exit code {proc.exitcode}")
    print("\n| backend | events | plain backup s | pocare backup s | overhead | plain restore s | pocare restore s "
          "| overhead | pocare backup + restore s per million events | plain dump MB | archive MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        s = {k: min(v) for k, v in row["seconds"].items()}
        per_million = (s["pocare backup"] + s["pocare restore"]) * 1_000_000 / row["events"]
        print(f"| {row['backend']} | {row['events']:,} | {s['plain backup']:.1f} | {s['pocare backup']:.1f} | "
              f"{s['pocare backup'] / s['plain backup']:.1f}× | {s['plain restore']:.1f} | {s['pocare restore']:.1f} | "
              f"{s['pocare restore'] / s['plain restore']:.1f}× | {per_million:.1f} | "
              f"{row['sizes']['plain'] / 1e6:,.0f} | {row['sizes']['pocare'] / 1e6:,.0f} |")
    for row in rows:
        for step, phases in row["phases"].items():
            print(f"{row['backend']} {step}: " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))
    print("Machine:", ", ".join(f"{k} {v}" for k, v in machine_info().items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
