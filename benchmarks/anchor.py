"""Benchmark of the trail's anchors (issue 16): the cost of one digest for 500 chains, and of
`audit verify --digests` against plain `audit verify`; and what the content stamps cost a write.

On a scratch database per backend (SQLite under var/bench/, PostgreSQL ``pocare_bench_anchor``),
500 chains — 100 sites with 5 lanes each (``S000``, ``S000/1`` … ``S000/4``) — hold real hash
chains of ``--events`` events each (``canonical.event_hash``, inserted in bulk, heads advanced).
Then, in one process per backend:

1. **Time per digest**: ``anchoring.anchor()`` run ``--digests`` times; between two digests one
   event is appended to every chain, so each digest anchors 500 new heads (and checks the
   previous one's 500 against the database before it signs). p50 and p95. A digest includes
   reading the heads, the triggers' fingerprint, the Ed25519 signature and the write of the
   read-only file with fsync.
2. **Verify**: ``verify_all`` (plain ``audit verify``: every chain walked, signatures, stamped
   rows) is the baseline; ``verify_digests`` (what ``--digests`` adds: every digest's signature
   and link, every anchored position looked up, the trigger fingerprints) is timed on the same
   data, with all the digests of step 1 in the store.
3. **Content stamps**: ``event_record`` appends of an event whose object is a written-once row
   (a ``QcResult``, stamped) against the same append of an object that is not stamped, in
   alternating rounds; and ``content_stamps`` alone for a step's worth of rows (10).

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/anchor.py               # both backends, ~2 minutes
    PYTHONPATH=src .venv/bin/python benchmarks/anchor.py --events 20 --digests 5 --backend sqlite   # smoke

Nothing asserts on timing (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any

from ledger import BENCH_DIR, django_setup, machine_info
from scratch import drop, prepare

DB = "pocare_bench_anchor"
SITES, LANES = 100, 5


def chains() -> list[str]:
    return [f"S{s:03d}" + (f"/{lane}" if lane else "") for s in range(SITES) for lane in range(LANES)]


def fill(per_chain: int) -> int:
    """``per_chain`` real hash-chained events on each of the 500 chains; heads advanced."""
    from django.db import connection, transaction
    from django.utils import timezone

    from pocare.ledger import canonical

    columns = ("chain, seq, prev_hash, hash, event_type, occurred_at, actor_id, actor_username, actor_printed_name, "
               "object_type, object_id, object_repr, reason, request_id, old_values, new_values")
    start = timezone.now() - dt.timedelta(days=30)
    total = 0
    with transaction.atomic(), connection.cursor() as cur:
        for chain in chains():
            prev, rows = canonical.GENESIS_HASH, []
            for seq in range(1, per_chain + 1):
                at = start + dt.timedelta(seconds=seq)
                fields = [chain, seq, prev, "benchmark.record_updated", canonical.format_timestamp(at), None,
                          "bench", "POCare (bench)", "bench.Record", str(seq), f"Record {seq}", "bench",
                          "bench", "{}", f'{{"n":{seq}}}']
                h = canonical.event_hash(fields)
                rows.append([*fields[:3], h, fields[3], connection.ops.adapt_datetimefield_value(at), *fields[5:]])
                prev = h
            cur.executemany(f"INSERT INTO ledger_event ({columns}) VALUES ({', '.join(['%s'] * 16)})", rows)
            cur.execute("INSERT INTO ledger_chainhead (chain, seq, hash) VALUES (%s, %s, %s)", [chain, per_chain, prev])
            total += per_chain
    return total


def append_one_each() -> None:
    """One event on every chain, through the ledger's own append (heads locked and advanced)."""
    from django.db import connection, transaction

    from pocare.ledger import services
    from pocare.ledger.events import LedgerEvent

    for chain in chains():
        with transaction.atomic():
            seq, prev = services._lock_head_row(connection, chain)
            event = services.Event(chain=chain, seq=seq + 1, prev_hash=prev, event_type=str(LedgerEvent.VERIFIED),
                                   occurred_at=services.timezone.now(), actor=None, actor_username="bench",
                                   actor_printed_name="POCare (bench)", request_id="bench")
            event.hash = services.canonical.event_hash(event.hashed_fields())
            services._append(connection, event)


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, round(q * (len(values) - 1)))]


def stamp_cost(rounds: int, per_round: int) -> dict[str, float]:
    """µs per append with a stamped object against an unstamped one, and per 10-row stamp alone."""
    from django.db import transaction

    from pocare.ledger.events import LedgerEvent
    from pocare.ledger.models import ChainHead
    from pocare.ledger.records import content_stamps
    from pocare.ledger.services import event_record
    from pocare.manufacturing.models import QcResult, StepValue

    now = dt.datetime.now(dt.UTC)
    qc = QcResult(pk=1, batch_id=1, attribute_id="viability", value_number=96.5, unit="%", conforms=True,
                  method="Flow cytometry (7-AAD)", tested_at=now, entered_by_id=1, entered_at=now)
    plain = ChainHead(chain="plain", seq=1, hash="0" * 64)  # any row that is not written once
    values = [StepValue(pk=i, step_id=1, parameter_id=f"p{i}", value=1000 + i, unit="cells/µL", in_range=True,
                        critical=False, entered_by_id=1, entered_at=now) for i in range(10)]
    times: dict[str, list[float]] = {"stamped": [], "plain": []}
    for r in range(rounds):
        for name, obj in (("stamped", qc), ("plain", plain)) if r % 2 == 0 else (("plain", plain), ("stamped", qc)):
            started = time.perf_counter()
            for _ in range(per_round):
                with transaction.atomic():
                    event_record(actor=None, system="bench", event_type=LedgerEvent.VERIFIED, obj=obj, reason="b")
            times[name].append((time.perf_counter() - started) / per_round * 1e6)
    started = time.perf_counter()
    n = 2000
    for _ in range(n):
        content_stamps(values)
    return {"append_stamped_us": statistics.median(times["stamped"]),
            "append_plain_us": statistics.median(times["plain"]),
            "stamps_10_rows_us": (time.perf_counter() - started) / n * 1e6}


def one_backend(backend: str, events: int, digests: int) -> dict[str, Any]:
    url = prepare(backend, DB)
    django_setup(url)
    from django.conf import settings

    from pocare.ledger import anchoring
    from pocare.ledger.verify import verify_all

    work = BENCH_DIR / f"anchor-{backend}"
    shutil.rmtree(work, ignore_errors=True)
    key = work / "ed25519.pem"
    anchoring.key_init(key)
    settings.POCARE_ANCHOR_KEY = key
    settings.POCARE_ANCHOR_TRUSTED_KEYS = [anchoring.public_key_path(key)]
    store = anchoring.DigestStore(anchoring.DigestDirectoryStorage(location=str(work / "digests")))
    keys = anchoring.trusted_keys()
    filled = fill(events)
    anchor_s = []
    for _ in range(digests):
        append_one_each()
        started = time.perf_counter()
        done = anchoring.anchor(store=store, key_path=key)
        anchor_s.append(time.perf_counter() - started)
    assert done.heads == SITES * LANES
    started = time.perf_counter()
    plain = verify_all()
    verify_s = time.perf_counter() - started
    started = time.perf_counter()
    report = anchoring.verify_digests(store=store, keys=keys)
    digests_s = time.perf_counter() - started
    assert plain.ok and report.ok, (plain.chains[:3], report.problems[:3])
    stamps = stamp_cost(rounds=6, per_round=300)
    drop(backend, DB)
    shutil.rmtree(work, ignore_errors=True)
    return {
        "backend": backend, "chains": SITES * LANES, "events": filled + digests * SITES * LANES,
        "digests": digests, "digest_p50_ms": statistics.median(anchor_s) * 1e3,
        "digest_p95_ms": pct(anchor_s, 0.95) * 1e3,
        "verify_s": verify_s, "verify_digests_s": digests_s, "points": report.points, **stamps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200, help="events per chain before the first digest")
    parser.add_argument("--digests", type=int, default=24, help="digests made (one event per chain between)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_backend(args.one, args.events, args.digests)))
        return
    info = machine_info()
    print(f"# {info['date']}: {info['cpu']}, {info['cores']} cores, {info['ram']}")
    print(f"# PostgreSQL {info['postgresql']}; SQLite {info['sqlite']}")
    print(f"# 500 chains ({SITES} sites x {LANES} lanes), {args.events} events each, {args.digests} digests "
          "(one event appended to every chain before each)")
    header = ("backend", "events", "digest p50", "digest p95", "verify", "verify --digests adds", "anchored points",
              "append stamped", "append plain", "10-row stamp")
    print(" | ".join(header))
    for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
        out = subprocess.run([sys.executable, __file__, "--one", backend, "--events", str(args.events),
                              "--digests", str(args.digests)], check=True, capture_output=True, text=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(" | ".join([
            backend, f"{r['events']:,}", f"{r['digest_p50_ms']:.1f} ms", f"{r['digest_p95_ms']:.1f} ms",
            f"{r['verify_s']:.2f} s", f"{r['verify_digests_s']:.2f} s", f"{r['points']:,}",
            f"{r['append_stamped_us']:.0f} µs", f"{r['append_plain_us']:.0f} µs", f"{r['stamps_10_rows_us']:.0f} µs",
        ]))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
