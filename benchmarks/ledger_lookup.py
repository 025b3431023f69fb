"""Benchmark of the trail's reads at scale: one patient's events, a person's latest events, the count.

On a scratch PostgreSQL database filled with N ledger events (default 2,000,000; 10,000 orders,
about a third of the events stating a COI, 50 people, one of whom acts once in 100,000 events,
20 site chains), it times the three reads
that pages make, each against the query it replaced (the baseline, run in the same process on the
same data):

1. **One patient's events** (the order page): the latest 25 events that state the order's COI,
   through the ``EventSubject`` key index, against ``new_values LIKE '%"<COI>"%'`` (what the page
   did before, Django's ``__contains``).
2. **A person's latest events** (the home page): ``actor_username`` + ``actor_id`` through the
   ``(actor_username, -id)`` index, against ``actor_id`` with only the foreign key's index.
3. **The trail's count** (the audit trail page, unfiltered, Control Site): the sum of the chains'
   heads (``TrailPaginator``), against ``COUNT(*)``; and a filtered count (text search), capped
   at 10,000, against the uncapped count; and the first page of that text search (the trigram
   indexes of migration ``ledger.0006`` serve both), read as the paginator reads it when the
   matches are few (through the index, then sorted), against plain ``ORDER BY id DESC LIMIT 50``.

The events are written with SQL (``generate_series``), not through ``event_record``: their hashes
are not a chain (nothing here verifies), and the key index rows are written the same way. Each
read runs ``--runs`` times after one warm-up; p50 and p95 are reported. Nothing asserts on timing;
the target (200 ms p95 per page read, issue 15) is reported as met or missed.

Usage::

    .venv/bin/python benchmarks/ledger_lookup.py             # 2,000,000 events, about 3 minutes
    .venv/bin/python benchmarks/ledger_lookup.py --events 200000 --runs 10   # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from ledger import PG_SERVER, django_setup, machine_info
from scratch import drop, prepare

DB = "pocare_bench_lookup"
N_ORDERS, N_PEOPLE, N_CHAINS = 10_000, 50, 20
TARGET_MS = 200.0


def fill(n_events: int) -> None:
    """N events over 20 chains, a third of them stating one of 10,000 COIs; heads advanced."""
    from django.db import connection

    from pocare.accounts.models import User

    User.objects.bulk_create([User(username=f"bench{i}", printed_name=f"Bench {i}") for i in range(N_PEOPLE)])
    first = User.objects.get(username="bench0").pk
    with connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO ledger_event (chain, seq, prev_hash, hash, event_type, occurred_at, actor_id,
                actor_username, actor_printed_name, object_type, object_id, object_repr, reason,
                request_id, old_values, new_values)
            SELECT 'S' || lpad((g %% %(chains)s)::text, 2, '0'), g / %(chains)s + 1, repeat('0', 64),
                   md5(g::text) || md5((g + 1)::text), 'custody.handoff_completed',
                   now() - make_interval(secs => %(n)s - g),
                   CASE WHEN g %% 100000 = 7 THEN %(first)s ELSE %(first)s + 1 + g %% (%(people)s - 1) END,
                   CASE WHEN g %% 100000 = 7 THEN 'bench0' ELSE 'bench' || (1 + g %% (%(people)s - 1)) END,
                   'Bench', 'custody.Handoff', g::text, 'Hand-off ' || g,
                   'scan ' || g, 'bench', '{}',
                   CASE WHEN g %% 3 = 0
                        THEN '{"coi":"CP1' || lpad((g %% %(orders)s)::text, 12, '0') || '","kind":"receipt"}'
                        ELSE '{"kind":"reading","value":' || g || '}' END
            FROM generate_series(0, %(n)s - 1) AS g
            """,
            {"n": n_events, "chains": N_CHAINS, "people": N_PEOPLE, "orders": N_ORDERS, "first": first},
        )
        cur.execute(
            """
            INSERT INTO ledger_eventsubject (event_id, key)
            SELECT id, new_values::json ->> 'coi' FROM ledger_event WHERE new_values LIKE '{"coi"%%'
            """
        )
        cur.execute(
            """
            INSERT INTO ledger_chainhead (chain, seq, hash)
            SELECT chain, max(seq), repeat('0', 64) FROM ledger_event GROUP BY chain
            ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq
            """
        )
        cur.execute("ANALYZE")


def timed(read: Callable[[], Any], runs: int) -> dict[str, float]:
    read()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        read()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"p50": statistics.median(times), "p95": times[max(0, round(0.95 * len(times)) - 1)]}


def reads(runs: int) -> list[tuple[str, str, dict[str, float], dict[str, float]]]:
    from pocare.accounts.models import User
    from pocare.ledger.models import Event
    from pocare.trail.views import COUNT_CAP, TrailPaginator

    coi = f"CP1{'1234'.zfill(12)}"
    person = User.objects.get(username="bench0")  # a person who acts rarely: one event in 100,000
    events = Event.objects.all()
    rows = []

    def by_key() -> list[int]:
        return list(events.filter(subjects__key=coi).order_by("-id").values_list("id", flat=True)[:25])

    def by_text() -> list[int]:
        return list(events.filter(new_values__contains=f'"{coi}"').order_by("-id").values_list("id", flat=True)[:25])

    assert by_key() == by_text(), "the key index and the text search disagree"
    rows.append(("One patient's 25 latest events (order page)", "key index vs LIKE", timed(by_key, runs),
                 timed(by_text, runs)))

    def mine_indexed() -> list[int]:
        return list(events.filter(actor_username=person.username, actor_id=person.pk)
                    .order_by("-id").values_list("id", flat=True)[:5])

    def mine_fk() -> list[int]:
        return list(events.filter(actor_id=person.pk).order_by("-id").values_list("id", flat=True)[:5])

    assert mine_indexed() == mine_fk()
    rows.append(("A person's 5 latest events (home page)", "(actor_username, -id) vs actor FK",
                 timed(mine_indexed, runs), timed(mine_fk, runs)))

    def heads() -> int:
        return TrailPaginator(events, 50, chains=None, filtered=False).count

    assert heads() == events.count()
    rows.append(("Trail count, unfiltered (audit trail page)", "sum of heads vs COUNT(*)",
                 timed(heads, runs), timed(events.count, runs)))
    text = events.filter(reason__icontains="scan 123456")

    def text_page() -> list[int]:
        paginator = TrailPaginator(text, 50, chains=None, filtered=True)
        return [e.pk for e in paginator.page(1)]

    def text_page_by_id() -> list[int]:
        return list(text.order_by("-id").values_list("id", flat=True)[:50])

    assert text_page() == text_page_by_id()
    rows.append(("Text filter, first page of 50 (audit trail page)", "few matches sorted vs ORDER BY id",
                 timed(text_page, runs), timed(text_page_by_id, runs)))

    def capped() -> int:
        return TrailPaginator(text, 50, chains=None, filtered=True).count

    assert capped() == min(text.count(), COUNT_CAP)
    rows.append(("Trail count, text filter (audit trail page)", f"capped at {COUNT_CAP:,} vs COUNT(*)",
                 timed(capped, runs), timed(text.count, runs)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args(argv)
    if not 1_000 <= args.events <= 50_000_000:
        parser.error("--events: between 1,000 and 50,000,000")
    url = prepare("postgresql", DB)
    try:
        django_setup(url)
        start = time.perf_counter()
        fill(args.events)
        print(f"Filled {args.events:,} events in {time.perf_counter() - start:.0f} s ({PG_SERVER}/{DB}).")
        print("| read | how | p50 ms | p95 ms | baseline p50 ms | baseline p95 ms | target p95 200 ms |")
        print("|---|---|---:|---:|---:|---:|---|")
        for name, how, new, old in reads(args.runs):
            met = "met" if new["p95"] <= TARGET_MS else "MISSED"
            print(f"| {name} | {how} | {new['p50']:.1f} | {new['p95']:.1f} | {old['p50']:.1f} | "
                  f"{old['p95']:.1f} | {met} |")
        print("Machine:", ", ".join(f"{k} {v}" for k, v in machine_info().items()))
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            drop("postgresql", DB)
    return 0


if __name__ == "__main__":
    sys.exit(main())
