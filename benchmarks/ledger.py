"""Benchmark of the audit ledger: audited write throughput and `audit verify` speed.

One command measures, in the same run, on a SQLite file database and on PostgreSQL:

1. **Writes per second** with 1, 8 and 32 concurrent writers (separate processes, each with its
   own database connection), with and without the ledger. A *write* is one service transaction:

       with transaction.atomic():
           rec = BenchRecord.objects.select_for_update().get(pk=random_row_of_my_site)
           rec.status, rec.quantity, rec.version, rec.note, rec.updated_at = ...
           rec.save(update_fields=[...])
           event_record(actor=user, site=my_site, obj=rec, old=..., new=...)   # audited only

   The plain variant does exactly the same minus the ``event_record`` call. This *minimal* write
   is the ledger's worst case: the append is as big as the rest of the transaction. The
   *service* write is a real POCare service as a site manager's request calls it: a writer
   takes its unit out of service (``network.services.unit_status_change``) and requalifies it
   (``unit_requalify``) in turn, permission checks and validation included; its plain variant is
   the same service with ``event_record`` replaced by a no-op. Writers are spread over 8 sites
   (8 chains, writer *i* on site *i* mod 8) and, as the worst case, all on one site (one chain,
   which on PostgreSQL spreads over lanes, docs/ledger.md; the lanes each site opened are
   printed at the end). The 30 % target is judged on the service write, the writes POCare makes;
   the minimal write is reported as the bound.
2. **`audit verify` speed** on a valid chain set of 1,000,000 events (9 chains: 8 sites and
   NETWORK), generated with ``pocare.ledger.canonical.event_hash`` and bulk-loaded (COPY on
   PostgreSQL), timing ``pocare.ledger.verify.verify_all`` and the ``pocare audit verify``
   command.

Usage::

    .venv/bin/python benchmarks/ledger.py            # full run, about 8 minutes on 2 cores (11 with --baseline)
    .venv/bin/python benchmarks/ledger.py --quick    # smoke run, under a minute
    .venv/bin/python benchmarks/ledger.py --baseline 67816a0   # also measure that revision's ledger

Each write measurement runs plain, audited (and baseline) windows in alternation (3 rounds of
2 s after 0.5 s warm-up by default) and reports writes/s, latency, CPU per write (the writer
processes plus their PostgreSQL server processes, from /proc) and the CPU the rest of the machine
used meanwhile ("other load"): on a shared machine that is what makes runs differ.

Environment: ``BENCH_PG_URL`` (default ``postgres://postgres@127.0.0.1:5432``) is the server;
the script (re)creates the databases ``pocare_bench`` and ``pocare_bench_verify`` on it and
SQLite files under ``var/bench/``. Benchmarks are not tests: nothing here asserts on timing;
the targets (the ledger costs <= 30 % of POCare's write throughput on PostgreSQL, verify >=
200,000 events/s) are reported as met or missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
VENV_BIN = Path(sys.executable).parent
PG_SERVER = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
PG_WRITE_DB, PG_VERIFY_DB = "pocare_bench", "pocare_bench_verify"
BENCH_DIR = ROOT / "var" / "bench"

N_SITES = 8
ROWS_PER_SITE = 2_000
WRITER_COUNTS = (1, 8, 32)
WORKLOADS = ("minimal", "service")  # the write measured: see the module's docstring
TARGET_COST = 30.0  # % of write throughput on PostgreSQL
TARGET_VERIFY = 200_000  # events/s

# A fork context: workers start in milliseconds from a coordinator that has set Django up but
# holds no database connection, so each worker opens its own.
CTX = mp.get_context("fork")


# --- machine -----------------------------------------------------------------------------------


def machine_info() -> dict[str, str]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres") as conn:
        pg_version = conn.execute("SHOW server_version").fetchall()[0][0]
        pg_settings: dict[str, str] = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('fsync', 'synchronous_commit', 'shared_buffers', 'max_connections')"
        ).fetchall())
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "postgresql": f"{pg_version} (fsync={pg_settings.get('fsync')}, synchronous_commit="
        f"{pg_settings.get('synchronous_commit')}, "
        f"shared_buffers={int(pg_settings['shared_buffers']) * 8 // 1024} MiB), same machine, TCP 127.0.0.1",
        "sqlite": f"{sqlite3.sqlite_version} (WAL, synchronous=NORMAL, as in settings.py)",
        "python": platform.python_version(),
        "psycopg": psycopg.__version__ + f" ({psycopg.pq.__impl__})",
        "kernel": platform.release(),
    }


# --- databases ---------------------------------------------------------------------------------


def pg_recreate(name: str, template: str | None = None) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


def migrate(url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url, "POCARE_VAR_DIR": str(BENCH_DIR)}
    subprocess.run([str(VENV_BIN / "pocare"), "migrate", "-v0"], env=env, check=True, cwd=ROOT)


def prepare_databases(backends: list[str], purposes: list[str]) -> dict[str, dict[str, str]]:
    """Migrated, empty databases: one for the write benchmark, one for verify, per backend."""
    urls: dict[str, dict[str, str]] = {"sqlite": {}, "postgresql": {}}
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    if "sqlite" in backends:
        files = {p: BENCH_DIR / f"{p}.sqlite3" for p in purposes}
        for f in BENCH_DIR.glob("*.sqlite3*"):
            if f.name.split(".")[0] in purposes:
                f.unlink()
        first, *others = purposes
        migrate(f"sqlite:///{files[first]}")
        for p in others:
            shutil.copyfile(files[first], files[p])  # the migrating process closed it: WAL checkpointed
        urls["sqlite"] = {p: f"sqlite:///{f}" for p, f in files.items()}
    if "postgresql" in backends:
        names = {"writes": PG_WRITE_DB, "verify": PG_VERIFY_DB}
        first, *others = purposes
        pg_recreate(names[first])
        migrate(f"{PG_SERVER}/{names[first]}")
        for p in others:
            pg_recreate(names[p], template=names[first])
        urls["postgresql"] = {p: f"{PG_SERVER}/{names[p]}" for p in purposes}
    return urls


def drop_databases() -> None:
    """Remove what the run created (the verify databases hold a million events each)."""
    import psycopg

    for f in BENCH_DIR.glob("*.sqlite3*"):
        f.unlink()
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        for name in (PG_WRITE_DB, PG_VERIFY_DB):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def django_setup(url: str) -> None:
    """Called first thing in a coordinator process (never in the parent)."""
    os.environ["DATABASE_URL"] = url
    os.environ["POCARE_VAR_DIR"] = str(BENCH_DIR)
    os.environ["POCARE_DEBUG"] = "0"  # as in production: no query log kept in memory
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pocare.settings")
    import django

    django.setup()


# --- 1. write throughput -----------------------------------------------------------------------

BENCH_EVENT = "benchmark.record_updated"
STATUSES = ("draft", "in_review", "approved", "released", "quarantined")


class SiteRef:
    """What event_record needs of a site: its code (the chain)."""

    def __init__(self, code: str) -> None:
        self.code = code


def site_code(i: int) -> str:
    return f"S{i:02d}"


def _bench_model() -> Any:
    """An unmanaged model over the table the script creates with raw SQL."""
    from django.db import models

    class BenchRecord(models.Model):
        id = models.BigIntegerField(primary_key=True)
        site_code = models.CharField(max_length=16)
        version = models.BigIntegerField()
        status = models.CharField(max_length=20)
        quantity = models.IntegerField()
        note = models.TextField()
        updated_at = models.DateTimeField()

        class Meta:
            app_label = "benchmarks"
            managed = False
            db_table = "bench_record"

        def __str__(self) -> str:
            return f"Record {self.site_code}-{self.id}"

    return BenchRecord


def _create_bench_table() -> None:
    from django.db import connection, transaction

    ts = "timestamp with time zone" if connection.vendor == "postgresql" else "datetime"
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_record")
        cur.execute(
            "CREATE TABLE bench_record (id bigint PRIMARY KEY, site_code varchar(16) NOT NULL, "
            "version bigint NOT NULL, status varchar(20) NOT NULL, quantity integer NOT NULL, "
            f"note text NOT NULL, updated_at {ts} NOT NULL)"
        )
        rows = [
            (s * ROWS_PER_SITE + r + 1, site_code(s), 0, STATUSES[0], 0, "", now)
            for s in range(N_SITES) for r in range(ROWS_PER_SITE)
        ]
        cur.executemany(
            "INSERT INTO bench_record (id, site_code, version, status, quantity, note, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [(*r[:6], connection.ops.adapt_datetimefield_value(r[6])) for r in rows],
        )
        if connection.vendor == "postgresql":
            cur.execute("ANALYZE bench_record")


def _create_service_world() -> None:
    """What the *service* write needs, made directly (set-up, not measured): 8 active sites with
    the codes of the minimal write's chains, a site manager at each, and for every writer a unit
    at each site it may write to (its own, and S00 for the one-chain case)."""
    from django.utils import timezone

    from pocare.accounts.models import Membership, User
    from pocare.accounts.roles import Role
    from pocare.network.models import DeviceType, ManufacturingUnit, Site, SiteKind, SiteStatus

    now = timezone.now()
    far = (now + dt.timedelta(days=3650)).date()
    for s in range(N_SITES):
        site = Site.objects.create(
            code=site_code(s), name=f"Benchmark site {s}", kind=SiteKind.HOSPITAL, status=SiteStatus.ACTIVE,
            facility_id=f"B{s:04d}", city="Utrecht", country="NL", latitude=52.09, longitude=5.12,
            time_zone="Europe/Amsterdam", created_at=now)
        manager = User(username=f"bench.manager{s}", printed_name=f"Bench Manager {s}")
        manager.set_unusable_password()
        manager.save()
        Membership.objects.create(user=manager, role=Role.SITE_MANAGER, site=site)
        ManufacturingUnit.objects.bulk_create(
            ManufacturingUnit(site=site, device_type=DeviceType.PRODIGY, serial=f"BENCH-{i}-{s}",
                              calibration_due=far, maintenance_due=far, qualified_at=now, created_at=now)
            for i in range(max(WRITER_COUNTS)) if s in (0, i % N_SITES))


def _no_event(**kwargs: Any) -> None:
    """The *plain* variant of the service write: the service without its ledger event."""


def _writer(idx: int, tasks: Any, results: Any) -> None:
    import django

    django.setup()  # already set up in the forked coordinator: a no-op, kept for clarity
    from django.db import connection, transaction
    from django.utils import timezone

    from pocare.accounts.models import User
    from pocare.ledger import services

    recorders = {"audited": services.event_record}
    if _BASELINE.get("services") is not None:
        recorders["baseline"] = _BASELINE["services"].event_record
    BenchRecord = _BENCH_MODEL
    user = User.objects.get(username="bench.writer")
    fields = ["status", "quantity", "version", "note", "updated_at"]

    def write(rid: int, site: SiteRef, variant: str) -> None:
        event_record = recorders.get(variant)
        with transaction.atomic():
            rec = BenchRecord.objects.select_for_update().get(pk=rid)
            old = {"status": rec.status, "quantity": rec.quantity, "version": rec.version}
            rec.version += 1
            rec.status = STATUSES[rec.version % len(STATUSES)]
            rec.quantity += 1
            rec.note = f"updated by writer {idx}"
            rec.updated_at = timezone.now()
            rec.save(update_fields=fields)
            if event_record is not None:
                event_record(
                    actor=user, event_type=BENCH_EVENT, site=site, obj=rec,
                    reason="benchmark write",
                    old=old, new={"status": rec.status, "quantity": rec.quantity, "version": rec.version},
                )

    def service_write(site_index: int, variant: str) -> None:
        from pocare.accounts.selectors import forget_memberships
        from pocare.network import services as network
        from pocare.network.models import ManufacturingUnit, UnitStatus

        if not units:
            units.update({u.site.code: u for u in ManufacturingUnit.objects.select_related("site")
                          .filter(serial__startswith=f"BENCH-{idx}-")})
            managers.update({int(u.username.removeprefix("bench.manager")): u
                             for u in User.objects.filter(username__startswith="bench.manager")})
        network.event_record = recorders.get(variant, _no_event)  # the one difference between the variants
        unit, manager = units[site_code(site_index)], managers[site_index]
        forget_memberships(manager)  # each write is a request of its own: permissions are read again
        if unit.status == UnitStatus.QUALIFIED:
            unit = network.unit_status_change(actor=manager, unit=unit, status=UnitStatus.OUT_OF_SERVICE,
                                              reason="benchmark: taken out of service for calibration")
        else:
            due = (timezone.now() + dt.timedelta(days=365)).date()
            unit = network.unit_requalify(actor=manager, unit=unit, calibration_due=due, maintenance_due=due,
                                          reason="benchmark: calibrated and requalified")
        units[unit.site.code] = unit

    units: dict[str, Any] = {}
    managers: dict[int, Any] = {}

    def server_pid() -> int | None:
        if connection.vendor != "postgresql":
            return None  # SQLite works inside the writer process: its CPU is the writer's
        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            return int(cur.fetchone()[0])

    backend_pid = server_pid()
    while (task := tasks.get()) is not None:
        rng = random.Random(task["seed"] * 1000 + idx)
        s = idx % N_SITES if task["chains"] == "spread" else 0
        site, first_row = SiteRef(site_code(s)), s * ROWS_PER_SITE + 1
        start, end = task["t0"] + task["warmup"], task["t0"] + task["warmup"] + task["duration"]
        latencies: list[float] = []
        errors = started = 0
        cpu0 = server0 = 0.0
        while time.monotonic() < task["t0"]:
            time.sleep(0.001)
        while (t := time.monotonic()) < end:
            if t >= start and not started:
                cpu0, server0 = time.process_time(), _process_cpu(backend_pid)
            started += t >= start
            try:
                if task["workload"] == "service":
                    service_write(s, task["variant"])
                else:
                    write(first_row + rng.randrange(ROWS_PER_SITE), site, task["variant"])
            except Exception as exc:  # counted and reported, the run goes on
                errors += 1
                if errors == 1:
                    print(f"writer {idx}: {type(exc).__name__}: {exc}", file=sys.stderr)
                connection.close()
                backend_pid = server_pid()
                continue
            done = time.monotonic()
            if t >= start and done <= end:
                latencies.append(done - t)
        # CPU of the writes started in the window (the last one may end a little after it)
        cpu = (time.process_time() - cpu0, _process_cpu(backend_pid) - server0, started) if started else (0, 0, 0)
        results.put((idx, latencies, errors, cpu))
    connection.close()


_TICK = os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` (0 for none)."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _machine_busy() -> float:
    """CPU seconds all processes of the machine have used so far (all cores)."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in f.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICK


_BENCH_MODEL: Any = None
# --baseline REV: the ledger modules of that git revision, loaded beside the current ones.
_BASELINE: dict[str, Any] = {}


def load_baseline(rev: str) -> None:
    """Import services.py and verify.py as they are at git revision ``rev`` (after django.setup)."""
    import importlib.util
    import tempfile

    for name in ("services", "verify"):
        source = subprocess.run(["git", "show", f"{rev}:src/pocare/ledger/{name}.py"], cwd=ROOT,
                                check=True, capture_output=True, text=True).stdout
        path = Path(tempfile.mkdtemp(prefix="pocare-baseline-")) / f"{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(f"pocare_ledger_{name}_baseline", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        _BASELINE[name] = module


def run_writes(backend: str, url: str, duration: float, warmup: float, rounds: int, baseline: str | None,
               workloads: list[str], writer_counts: list[int], placements: list[str], out: Any) -> None:
    """Coordinator process of the write benchmark on one backend."""
    global _BENCH_MODEL
    django_setup(url)
    if baseline:
        load_baseline(baseline)
    from django.db import connection, connections, models

    from pocare.accounts.models import User
    from pocare.ledger.events import event_types

    @event_types
    class BenchEvent(models.TextChoices):
        RECORD_UPDATED = BENCH_EVENT, "Benchmark record updated"

    _BENCH_MODEL = _bench_model()
    _create_bench_table()
    user = User(username="bench.writer", printed_name="Bench Writer")
    user.set_unusable_password()
    user.save()
    if "service" in workloads:
        _create_service_world()
    connections.close_all()

    tasks = [CTX.Queue() for _ in range(max(WRITER_COUNTS))]
    results = CTX.Queue()
    workers = [CTX.Process(target=_writer, args=(i, tasks[i], results)) for i in range(max(WRITER_COUNTS))]
    for w in workers:
        w.start()

    variants = ["plain", "audited", *(["baseline"] if _BASELINE else [])]
    rows = []
    seed = 0
    for workload, n, chains in [(w, n, c) for w in workloads for n in writer_counts for c in placements]:
        if n == 1 and chains == "one":
            continue  # one writer is on one chain either way
        got: dict[str, list[Any]] = {v: [] for v in variants}
        per_round: dict[str, list[int]] = {v: [] for v in variants}
        busy = dict.fromkeys(variants, 0.0)
        # The variants alternate in short rounds (P A, A P, P A…), so that a change in the
        # machine's load during the run weighs on all alike.
        for rnd in range(rounds):
            for variant in (variants if rnd % 2 == 0 else variants[::-1]):
                seed += 1
                t0 = time.monotonic() + 0.1
                task = {"t0": t0, "warmup": warmup, "duration": duration, "workload": workload,
                        "variant": variant, "chains": chains, "seed": seed}
                for i in range(n):
                    tasks[i].put(task)
                time.sleep(max(0.0, t0 + warmup - time.monotonic()))
                busy0 = _machine_busy()
                time.sleep(max(0.0, t0 + warmup + duration - time.monotonic()))
                busy[variant] += _machine_busy() - busy0
                window = [results.get() for _ in range(n)]
                got[variant] += window
                per_round[variant].append(sum(len(ls) for _, ls, _, _ in window))
        row: dict[str, Any] = {"backend": backend, "workload": workload, "writers": n,
                               "chains": min(n, N_SITES) if chains == "spread" else 1}
        for variant, res in got.items():
            lat = [x for _, ls, _, _ in res for x in ls]
            client = sum(c for *_, (c, _, _) in res)
            server = sum(sv for *_, (_, sv, _) in res)
            writes = sum(w for *_, (_, _, w) in res) or 1
            row[variant] = {
                "writes_per_s": len(lat) / (duration * rounds),
                "p50_ms": 1000 * statistics.median(lat) if lat else float("nan"),
                "p99_ms": 1000 * statistics.quantiles(lat, n=100)[98] if len(lat) > 1 else float("nan"),
                "errors": sum(e for _, _, e, _ in res),
                "client_cpu_ms": 1000 * client / writes,
                "server_cpu_ms": 1000 * server / writes,
                # cores busy with anything but these writers and their server processes
                "other_cores": max(0.0, (busy[variant] - client - server) / (duration * rounds)),
            }
        plain = row["plain"]
        for variant in variants[1:]:
            v = row[variant]
            v["cost_pct"] = 100 * (1 - v["writes_per_s"] / plain["writes_per_s"])
            # what the ledger would cost if the machine were CPU-bound on these writes
            cpu_plain = plain["client_cpu_ms"] + plain["server_cpu_ms"]
            cpu = v["client_cpu_ms"] + v["server_cpu_ms"]
            v["cpu_cost_pct"] = 100 * (1 - cpu_plain / cpu) if cpu else float("nan")
            # Each round's pair of windows, next to each other in time: the spread of these shows
            # how much of a difference between runs is the machine.
            v["round_costs_pct"] = [100 * (1 - a / p) for a, p in zip(per_round[variant], per_round["plain"],
                                                                     strict=True) if p]
        row["cost_pct"], row["cpu_cost_pct"] = row["audited"]["cost_pct"], row["audited"]["cpu_cost_pct"]
        rows.append(row)
        base = f"  (baseline {row['baseline']['writes_per_s']:6.0f}/s, cost {row['baseline']['cost_pct']:5.1f} %)" \
            if "baseline" in row else ""
        print(f"  {backend:<10} {workload:<8} {n:>2} writers on {row['chains']} chain(s): "
              f"plain {plain['writes_per_s']:6.0f}/s  audited {row['audited']['writes_per_s']:6.0f}/s  "
              f"ledger cost {row['cost_pct']:5.1f} % (by CPU per write {row['cpu_cost_pct']:5.1f} %){base}, "
              f"other load {statistics.mean(row[v]['other_cores'] for v in variants):.2f} cores", flush=True)
    for t in tasks:
        t.put(None)
    for w in workers:
        w.join()
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM ledger_event")
        n_events = cur.fetchone()[0]
    from pocare.ledger.verify import verify_all

    report = verify_all()
    # How many lanes each site's chain spread over (the baseline's appends are all on lane 0).
    from pocare.ledger.models import ChainHead, site_chain

    lanes: dict[str, int] = {}
    for chain in ChainHead.objects.values_list("chain", flat=True):
        lanes[site_chain(chain)] = lanes.get(site_chain(chain), 0) + 1
    out.put({"rows": rows, "events_written": n_events, "chains_ok": report.ok, "lanes": lanes})


# --- 2. verify speed ---------------------------------------------------------------------------

VERIFY_CHAIN_WEIGHTS = {**{site_code(i): w for i, w in enumerate((20, 16, 14, 12, 12, 10, 6, 6))},
                        "NETWORK": 4}
EVENT_TYPES = ("batch.step_recorded", "batch.sample_registered", "qc.result_entered",
               "deviation.opened", "document.revised", "accounts.login", "ledger.record_signed")
_INSERT_COLUMNS = (
    "chain", "seq", "prev_hash", "hash", "event_type", "occurred_at", "actor_id", "actor_username",
    "actor_printed_name", "object_type", "object_id", "object_repr", "reason", "request_id",
    "old_values", "new_values",
)


def generate_events(n: int, actors: list[tuple[int, str, str]], *, sqlite: bool) -> Any:
    """Yield ``n`` valid events in insertion order (the chains interleaved, as in a live network),
    as tuples in ``_INSERT_COLUMNS`` order, with ``occurred_at`` as the database stores it."""
    from pocare.ledger.canonical import GENESIS_HASH, canonical_json, event_hash

    rng = random.Random(42)
    chains = list(VERIFY_CHAIN_WEIGHTS)
    picks = rng.choices(chains, weights=list(VERIFY_CHAIN_WEIGHTS.values()), k=n)
    heads = dict.fromkeys(chains, (0, GENESIS_HASH))
    values = []
    for i in range(1000):
        old = {"status": STATUSES[i % 5], "quantity": i, "comment": f"value {i}", "ok": i % 2 == 0}
        new = {**old, "status": STATUSES[(i + 1) % 5], "quantity": i + 1, "témoin": "Zoë Ñúñez"}
        values.append((canonical_json(old), canonical_json(new)))
    t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    one_us = dt.timedelta(microseconds=1)
    for i, chain in enumerate(picks):
        t += one_us * rng.randrange(1, 20_000_000)
        seq, prev = heads[chain]
        seq += 1
        if i % 10 == 0:
            actor_id, username, printed = None, "device-feed", "POCare (device-feed)"
        else:
            actor_id, username, printed = actors[i % len(actors)]
        old_values, new_values = values[i % 1000]
        occurred = t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        fields = (chain, seq, prev, EVENT_TYPES[i % len(EVENT_TYPES)], occurred, actor_id, username,
                  printed, "batch.Batch", str(100_000 + i % 5000), f"Batch B{100_000 + i % 5000}",
                  "" if i % 3 else "Correction after review of the record", f"req-{i:032x}", old_values, new_values)
        h = event_hash(fields)
        heads[chain] = (seq, h)
        stored = t.replace(tzinfo=None).isoformat(" ") if sqlite else t
        yield (chain, seq, prev, h, fields[3], stored, *fields[5:])
    generate_events.heads = heads  # type: ignore[attr-defined]


def bench_people() -> list[tuple[int, str, str]]:
    """The 20 operators the generated events name (id, user id, printed name)."""
    from pocare.accounts.models import User

    users = []
    for i in range(20):
        u = User(username=f"operator{i:02d}", printed_name=f"Operator Número {i:02d}")
        u.set_unusable_password()
        users.append(u)
    User.objects.bulk_create(users)
    return [(u.pk, u.username, u.printed_name) for u in User.objects.order_by("pk")]


def load_events(n_events: int, actors: list[tuple[int, str, str]]) -> None:
    """``n_events`` valid events on 9 chains (:func:`generate_events`) and their heads, by COPY on
    PostgreSQL and the driver's executemany on SQLite, then ANALYZE (backup.py loads the same way)."""
    from django.db import connection, transaction

    cols = ", ".join(_INSERT_COLUMNS)
    gen = generate_events(n_events, actors, sqlite=connection.vendor == "sqlite")
    with transaction.atomic(), connection.cursor() as cur:
        raw = cur.cursor  # the driver's cursor
        if connection.vendor == "postgresql":
            with raw.copy(f"COPY ledger_event ({cols}) FROM STDIN") as copy:
                for row in gen:
                    copy.write_row(row)
        else:
            # sqlite3's own cursor: Django's wrapper would tee (buffer) the whole generator.
            connection.connection.cursor().executemany(
                f"INSERT INTO ledger_event ({cols}) VALUES ({', '.join('?' * len(_INSERT_COLUMNS))})", gen)
        heads = generate_events.heads  # type: ignore[attr-defined]
        cur.executemany("INSERT INTO ledger_chainhead (chain, seq, hash) VALUES (%s, %s, %s)",
                        [(c, s, h) for c, (s, h) in heads.items()])
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE ledger_event" if connection.vendor == "postgresql" else "ANALYZE")


def run_verify(backend: str, url: str, n_events: int, runs: int, baseline: str | None, out: Any) -> None:
    """Coordinator process of the verify benchmark on one backend: load, then time verify_all."""
    django_setup(url)
    if baseline:
        load_baseline(baseline)
    from django.db import connections

    from pocare.ledger.verify import verify_all

    actors = bench_people()
    started = time.perf_counter()
    load_events(n_events, actors)
    load_s = time.perf_counter() - started
    print(f"  {backend:<10} generated and loaded {n_events:,} events in {load_s:.1f} s", flush=True)

    from pocare.ledger import verify

    def timed(label: str, verify_all: Any = verify_all) -> tuple[float, Any]:
        busy0 = _machine_busy()
        time.sleep(1.0)
        other = _machine_busy() - busy0  # cores busy with other work just before the run
        started = time.perf_counter()
        report = verify_all()
        elapsed = time.perf_counter() - started
        print(f"  {backend:<10} verify_all ({label}): {report.events:,} events in {elapsed:.2f} s "
              f"({report.events / elapsed:,.0f} events/s), intact: {report.ok}, "
              f"other load just before: {other:.2f} cores", flush=True)
        others.append(other)
        return elapsed, report

    workers = verify._parallel_workers(n_events)
    times: list[float] = []
    others: list[float] = []
    for i in range(runs):
        elapsed, report = timed(f"run {i + 1}, {workers} process{'es' if workers > 1 else ''}")
        times.append(elapsed)
    single = None
    if workers > 1:  # the same, forced into one process: the speed per core
        auto = verify._parallel_workers
        verify._parallel_workers = lambda n: 1  # type: ignore[assignment]
        single, _ = timed("one process")
        verify._parallel_workers = auto
    before = timed(f"baseline {baseline}", _BASELINE["verify"].verify_all)[0] if baseline else None
    connections.close_all()
    median = statistics.median(times)
    out.put({"backend": backend, "events": report.events, "chains": len(report.chains), "ok": report.ok,
             "workers": workers, "seconds": median, "events_per_s": report.events / median,
             "best_events_per_s": report.events / min(times),
             "single_process_events_per_s": report.events / single if single else None,
             "other_cores": statistics.median(others),
             "baseline_events_per_s": report.events / before if before else None,
             "load_seconds": load_s})


def run_verify_command(url: str) -> dict[str, Any]:
    env = {**os.environ, "DATABASE_URL": url, "POCARE_VAR_DIR": str(BENCH_DIR), "POCARE_DEBUG": "0"}
    started = time.perf_counter()
    proc = subprocess.run([str(VENV_BIN / "pocare"), "audit", "verify", "--quiet"], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    summary = next((line for line in proc.stdout.splitlines() if "events checked" in line), proc.stdout[-300:])
    return {"returncode": proc.returncode, "wall_seconds": wall, "summary": summary.strip()}


def in_process(target: Any, *args: Any) -> Any:
    """Run ``target(*args, out)`` in a fresh coordinator process and return what it puts."""
    out = CTX.Queue()
    proc = CTX.Process(target=target, args=(*args, out))
    proc.start()
    result = out.get()
    proc.join()
    if proc.exitcode:
        raise SystemExit(f"{target.__name__} failed with exit code {proc.exitcode}")
    return result


# --- report ------------------------------------------------------------------------------------


def _rounds(variant: dict[str, Any]) -> str:
    costs = variant.get("round_costs_pct") or []
    if not costs:
        return "—"
    return f"{statistics.median(costs):.1f} % ({min(costs):.1f}–{max(costs):.1f})"


def report(machine: dict[str, str], writes: list[dict[str, Any]], verifies: list[dict[str, Any]],
           args: argparse.Namespace) -> str:
    lines = ["## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in machine.items()]
    lines += ["", f"## Audited writes ({args.rounds} x {args.duration:g} s per variant, each window after "
              f"{args.warmup:g} s warm-up)", "",
              "| backend | write | writers | chains | plain writes/s | audited writes/s | ledger cost | "
              "per round: median (min–max) | plain p50 / p99 ms | audited p50 / p99 ms | "
              "CPU ms per write, plain / audited | ledger cost by CPU | other load (cores) |"
              + (" baseline writes/s | baseline cost |" if args.baseline else ""),
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
              + ("---:|---:|" if args.baseline else "")]
    for r in writes:
        p, a = r["plain"], r["audited"]
        err = f" ({p['errors'] + a['errors']} errors)" if p["errors"] + a["errors"] else ""
        base = f" {r['baseline']['writes_per_s']:,.0f} | {r['baseline']['cost_pct']:.1f} % |" if "baseline" in r else ""
        lines.append(
            f"| {r['backend']} | {r['workload']} | {r['writers']} | {r['chains']} | {p['writes_per_s']:,.0f} | "
            f"{a['writes_per_s']:,.0f} | {r['cost_pct']:.1f} %{err} | {_rounds(a)} | "
            f"{p['p50_ms']:.2f} / {p['p99_ms']:.2f} | "
            f"{a['p50_ms']:.2f} / {a['p99_ms']:.2f} | "
            f"{p['client_cpu_ms'] + p['server_cpu_ms']:.2f} / {a['client_cpu_ms'] + a['server_cpu_ms']:.2f} | "
            f"{r['cpu_cost_pct']:.1f} % | {p['other_cores']:.2f} / {a['other_cores']:.2f} |{base}")
    lines += ["", f"## audit verify (median of {args.verify_runs} run(s))", "",
              "| backend | events | chains | processes | verify_all s | events/s | best events/s | "
              "events/s in one process | `pocare audit verify` wall s (incl. start-up) | other load (cores) |"
              + (" baseline events/s |" if args.baseline else ""),
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if args.baseline else "")]
    for v in verifies:
        one = f"{v['single_process_events_per_s']:,.0f}" if v["single_process_events_per_s"] else "(same)"
        lines.append(f"| {v['backend']} | {v['events']:,} | {v['chains']} | {v['workers']} | {v['seconds']:.2f} | "
                     f"{v['events_per_s']:,.0f} | {v['best_events_per_s']:,.0f} | {one} | "
                     f"{v['command']['wall_seconds']:.2f} | {v['other_cores']:.2f} |"
                     + (f" {v['baseline_events_per_s']:,.0f} |" if v.get("baseline_events_per_s") else ""))
    slowest = min((v["events_per_s"] for v in verifies), default=float("nan"))

    def verdict(ok: bool, value: float) -> str:
        return "not measured" if value != value else ("MET" if ok else "MISSED")

    lines += ["", "## Targets", ""]
    for workload in WORKLOADS:
        pg = [r for r in writes if r["backend"] == "postgresql" and r["workload"] == workload]
        spread = [r for r in pg if r["chains"] > 1 or r["writers"] == 1]
        one = [r for r in pg if r["chains"] == 1 and r["writers"] > 1]
        for label, rows in (("writers spread over chains", spread), ("all writers on one site (worst case)", one)):
            worst = max((r["cost_pct"] for r in rows), default=float("nan"))
            if workload == "service":  # POCare's own writes: what the target is about
                lines.append(f"- ledger cost on PostgreSQL, service write, {label}: worst {worst:.1f} % "
                             f"(target <= {TARGET_COST:g} %): {verdict(worst <= TARGET_COST, worst)}")
            else:  # a bare one-statement update: the append doubles its writing, so this bounds the cost
                lines.append(f"- ledger cost on PostgreSQL, minimal write (upper bound, not a POCare write), {label}: "
                             f"worst {worst:.1f} %")
    lines.append(f"- verify: slowest {slowest:,.0f} events/s (target >= {TARGET_VERIFY:,}): "
                 f"{verdict(slowest >= TARGET_VERIFY, slowest)}")
    return "\n".join(lines)


# --- 3. what the trail's search indexes cost an append (issue 15) --------------------------------

#: The indexes added for the trail's reads since the write figures above were taken: the trigram
#: GIN indexes of migration ledger.0006 (on PostgreSQL) — the EventSubject row of 0005 is the other.
TRAIL_SEARCH_INDEXES = ("ledger_event_repr_trgm", "ledger_event_reason_trgm")


def run_append_cost(url: str, per_round: int, rounds: int, out: Any) -> None:
    """One process appends ``per_round`` events per window through ``event_record``, each in its own
    transaction, alternating *with* the additions (EventSubject rows for the COI and DIN each event
    states, the two trigram indexes) and *without* them (``subject_keys`` answering nothing, the
    indexes dropped): events/s of each, the same events, the same tables."""
    django_setup(url)
    from django.db import connection, models, transaction

    from pocare.accounts.models import User
    from pocare.ledger import services
    from pocare.ledger.events import event_types

    @event_types
    class BenchAppend(models.TextChoices):
        HANDOFF = "benchmark.handoff_scanned", "Benchmark hand-off scanned"

    user = User(username="bench.appender", printed_name="Bench Appender")
    user.set_unusable_password()
    user.save()
    with connection.cursor() as cur:
        cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY(%s)",
                    [list(TRAIL_SEARCH_INDEXES)])
        definitions = dict(cur.fetchall())
    keys = services.subject_keys
    site = SiteRef("S00")
    counter = iter(range(10**9))

    def variant(with_additions: bool) -> None:
        services.subject_keys = keys if with_additions else (lambda *values: set())  # type: ignore[assignment]
        with connection.cursor() as cur:
            for name, definition in definitions.items():
                cur.execute(definition.replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS") if with_additions
                            else f"DROP INDEX IF EXISTS {name}")

    def window() -> float:
        start = time.perf_counter()
        for _ in range(per_round):
            i = next(counter)
            coi, din = f"CP1{i % 10_000:012d}", f"A9999{26}{i:06d}"
            with transaction.atomic():
                services.event_record(actor=user, event_type=BenchAppend.HANDOFF, site=site,
                                      object_type="custody.TherapyOrder", object_id=str(i % 10_000),
                                      object_repr=f"Order {coi}", reason=f"Scanned at goods-in, bag {i}",
                                      old={}, new={"coi": coi, "din": din, "kind": "receipt_at_site"})
        return per_round / (time.perf_counter() - start)

    rates: dict[str, list[float]] = {"with": [], "without": []}
    others: list[float] = []
    variant(True)
    window()  # warm-up
    for r in range(rounds):
        for name in (("with", "without") if r % 2 == 0 else ("without", "with")):
            variant(name == "with")
            busy0 = _machine_busy()
            started = time.perf_counter()
            rates[name].append(window())
            others.append((_machine_busy() - busy0) / (time.perf_counter() - started))
    variant(True)
    out.put({"with": statistics.median(rates["with"]), "without": statistics.median(rates["without"]),
             "rounds": rates, "other_cores": statistics.median(others), "per_round": per_round})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts: a smoke run under a minute")
    parser.add_argument("--duration", type=float, help="seconds per measured window (default 2, quick 0.6)")
    parser.add_argument("--rounds", type=int, help="windows per variant and configuration (default 3, quick 1)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds before each window (default 0.5, quick 0.2)")
    parser.add_argument("--events", type=int, help="events in the verify benchmark (default 1,000,000, quick 50,000)")
    parser.add_argument("--verify-runs", type=int,
                        help="timed verify_all runs, the median is reported (default 3, quick 1)")
    parser.add_argument("--only", choices=("writes", "verify", "appends"),
                        help="run one part only; appends: what the trail's search indexes (EventSubject, "
                             "the trigram indexes) cost an append, with and without, PostgreSQL")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), action="append", help="default: both")
    parser.add_argument("--workload", choices=WORKLOADS, action="append",
                        help="which write to measure: the minimal one, the real service, or (default) both")
    parser.add_argument("--writers", type=int, choices=WRITER_COUNTS, action="append",
                        help="measure only these numbers of concurrent writers (default: 1, 8 and 32)")
    parser.add_argument("--placement", choices=("spread", "one"), action="append",
                        help="writers spread over 8 sites' chains, or all on one site (default: both)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--keep", action="store_true",
                        help="keep the benchmark databases (by default they are dropped at the end)")
    parser.add_argument("--baseline", metavar="GIT_REV",
                        help="also measure the ledger's services.py and verify.py as they are at this git "
                             "revision (e.g. HEAD), for a before/after comparison")
    args = parser.parse_args()
    args.duration = args.duration or (0.6 if args.quick else 2.0)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.warmup = args.warmup if args.warmup is not None else (0.2 if args.quick else 0.5)
    args.events = args.events or (50_000 if args.quick else 1_000_000)
    args.verify_runs = args.verify_runs or (1 if args.quick else 3)
    backends = args.backend or ["sqlite", "postgresql"]

    started = time.perf_counter()
    machine = machine_info()
    if args.only == "appends":
        per_round = 500 if args.quick else 2_000
        print(f"Append cost of the trail's search indexes: {args.rounds} rounds of {per_round} appends per "
              "variant, one process, PostgreSQL", flush=True)
        pg_recreate(PG_WRITE_DB)
        migrate(f"{PG_SERVER}/{PG_WRITE_DB}")
        res = in_process(run_append_cost, f"{PG_SERVER}/{PG_WRITE_DB}", per_round, args.rounds)
        print("| variant | events/s (median) | per round |\n|---|---:|---|")
        for name in ("without", "with"):
            print(f"| {name} EventSubject rows and trigram indexes | {res[name]:,.0f} | "
                  + ", ".join(f"{x:,.0f}" for x in res["rounds"][name]) + " |")
        print(f"Cost of the additions: {1 - res['with'] / res['without']:.1%} of append throughput; "
              f"other load {res['other_cores']:.2f} cores.")
        print("Machine:", ", ".join(f"{k} {v}" for k, v in machine.items()))
        if not args.keep:
            drop_databases()
        return
    print("Preparing databases (migrate)…", flush=True)
    urls = prepare_databases(backends, [p for p in ("writes", "verify") if args.only in (None, p)])
    writes: list[dict[str, Any]] = []
    verifies: list[dict[str, Any]] = []
    if args.only != "verify":
        print("Write throughput:", flush=True)
        for backend in backends:
            res = in_process(run_writes, backend, urls[backend]["writes"], args.duration, args.warmup, args.rounds,
                             args.baseline, args.workload or list(WORKLOADS), args.writers or list(WRITER_COUNTS),
                             args.placement or ["spread", "one"])
            writes += res["rows"]
            print(f"  {backend:<10} lanes per chain at the end: "
                  + ", ".join(f"{c} {n}" for c, n in sorted(res["lanes"].items())), flush=True)
            print(f"  {backend:<10} {res['events_written']:,} events written, chains verify intact: "
                  f"{res['chains_ok']}", flush=True)
    if args.only != "writes":
        print(f"Verify ({args.events:,} events):", flush=True)
        for backend in backends:
            res = in_process(run_verify, backend, urls[backend]["verify"], args.events, args.verify_runs,
                             args.baseline)
            res["command"] = run_verify_command(urls[backend]["verify"])
            print(f"  {backend:<10} pocare audit verify: {res['command']['summary']} "
                  f"(wall {res['command']['wall_seconds']:.2f} s, exit {res['command']['returncode']})", flush=True)
            verifies.append(res)
    text = report(machine, writes, verifies, args)
    print()
    print(text)
    print(f"\nTotal run time {time.perf_counter() - started:.0f} s.")
    if not args.keep:
        drop_databases()
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "writes": writes, "verify": verifies,
                                         "args": {k: str(v) for k, v in vars(args).items()}}, indent=1))


if __name__ == "__main__":
    main()
