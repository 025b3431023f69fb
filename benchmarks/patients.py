"""Patients benchmark (GitHub issue 17). The slot-chain proposal is in ``bench_chain_*``.

Slot-chain proposal: one hospital, 500 candidate manufacturing sites with 1–4 units each, busy
about 70 % of a year with batches and bookings, and one year of free apheresis and infusion slots
(two a working day each). For every site the earliest feasible chain (apheresis → travel → a unit
free for the whole 16-day process within the material's 48 h hold → 72 h QC/release → travel →
infusion), ranked. ``pocare.patients.chain.propose`` (merged start windows, bisection, jumps over
slots that cannot reach a free window) against the straightforward per-site scan a competent
engineer writes first: for each site, each apheresis slot in order, each unit, walk the unit's busy
intervals to the first gap that fits, stop at the first slot that works, then walk the infusion
slots. Both must give the same chain for every site before any time is reported.

    .venv/bin/python benchmarks/patients.py               # chain, then the FHIR benchmark (about 5 minutes)
    .venv/bin/python benchmarks/patients.py --quick       # 50 sites, 5 rounds; FHIR on SQLite, 100 imports
    .venv/bin/python benchmarks/patients.py --chain-only  # the chain proposal alone, about a minute

The issue's other two figures (a patient Bundle under 100 ms with a constant number of queries, 1,000
ServiceRequest imports timed) are measured by ``benchmarks/patients_fhir.py``, which this command runs
after the chain (its own options: run it directly).

Target: p95 < 200 ms for 500 sites × one year. No database: the module is pure; the selector that
feeds it (``pocare.patients.booking.chain_propose``) reads a fixed number of queries
(tests/patients/test_booking.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pocare.patients.chain import Candidate, Chain, Problem, Slot, Unit, propose

MINUTE, HOUR, DAY = 1.0, 60.0, 1440.0
PROCESS = 16 * DAY
RELEASE = 72 * HOUR
HOLD = 48 * HOUR
TARGET_MS = 200.0


def bench_chain_instance(sites: int, *, seed: int = 17) -> tuple[Problem, list[Slot], list[Slot], list[Candidate]]:
    """A year from t = 0 (minutes): free slots at the hospital, busy units at the sites."""
    rng = random.Random(seed)
    year = 365 * DAY
    apheresis, infusion = [], []
    key = 0
    for day in range(365):
        if day % 7 in (5, 6):  # weekends closed
            continue
        for hour in (8, 11):
            key += 1
            if rng.random() < 0.75:  # a quarter already booked
                start = day * DAY + hour * HOUR
                apheresis.append(Slot(key, start, start + 3 * HOUR))
        for hour in (13, 15):
            key += 1
            if rng.random() < 0.75:
                start = day * DAY + hour * HOUR
                infusion.append(Slot(key, start, start + 2 * HOUR))
    candidates = []
    unit_key = 0
    for site in range(sites):
        units = []
        for _ in range(rng.randint(1, 4)):
            unit_key += 1
            busy, t = [], rng.uniform(-PROCESS, 10 * DAY)
            while t < year:
                length = PROCESS * rng.uniform(0.8, 1.0)
                busy.append((t, t + length))
                t += length + rng.expovariate(1 / (0.45 * PROCESS))  # ~70 % occupied
            units.append(Unit(unit_key, tuple(busy)))
        candidates.append(Candidate(site, round(rng.uniform(0, 600)), tuple(units)))
    return Problem(duration=PROCESS, release_lead=RELEASE, hold=HOLD, after=0.0), apheresis, infusion, candidates


def bench_chain_baseline(problem: Problem, apheresis: list[Slot], infusion: list[Slot],
                         sites: list[Candidate]) -> list[Chain]:
    """The per-site linear scan: every site, every apheresis slot in order, every unit's busy list."""
    aph = sorted((s for s in apheresis if s.start >= problem.after), key=lambda s: (s.end, s.start, s.key))
    inf = sorted((s for s in infusion if s.start >= problem.after), key=lambda s: (s.start, s.key))
    out = []
    for site in sites:
        found = None
        units = [(unit.key, sorted(unit.busy)) for unit in site.units]  # sorted once per unit
        for slot in aph:
            arrival = slot.end + site.travel
            best_unit, best_start = None, float("inf")
            for key, busy in units:
                start = max(arrival, problem.after)
                for s, e in busy:
                    if e <= start:
                        continue
                    if start + problem.duration <= s:
                        break
                    start = max(start, e)
                if start < best_start:
                    best_unit, best_start = key, start
            if best_unit is not None and best_start <= slot.end + problem.hold:
                end = best_start + problem.duration
                ready = end + problem.release_lead
                for candidate in inf:
                    if candidate.start >= ready + site.travel:
                        found = Chain(site.key, site.travel, slot, best_unit, best_start, end, ready, candidate)
                        break
                break
        if found is not None:
            out.append(found)
    out.sort(key=Chain.rank)
    return out


def _timed(fn, rounds: int) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def _p(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_chain_run(sites: int, rounds: int, baseline_rounds: int) -> dict[str, float]:
    problem, apheresis, infusion, candidates = bench_chain_instance(sites)
    ours = propose(problem, apheresis=apheresis, infusion=infusion, sites=candidates)
    theirs = bench_chain_baseline(problem, apheresis, infusion, candidates)
    assert [(c.site, c.apheresis.key, c.unit, c.manufacturing_start, c.infusion.key) for c in ours] == \
        [(c.site, c.apheresis.key, c.unit, c.manufacturing_start, c.infusion.key) for c in theirs], "results differ"
    busy = sum(len(u.busy) for c in candidates for u in c.units)
    units = sum(len(c.units) for c in candidates)
    print(f"instance: {sites} sites, {units} units, {busy:,} busy intervals, {len(apheresis)} apheresis and "
          f"{len(infusion)} infusion slots free; {len(ours)} sites with a chain (same chains in both)")
    fast = _timed(lambda: propose(problem, apheresis=apheresis, infusion=infusion, sites=candidates), rounds)
    slow = _timed(lambda: bench_chain_baseline(problem, apheresis, infusion, candidates), baseline_rounds)
    result = {"p50": statistics.median(fast), "p95": _p(fast, 0.95), "baseline_p50": statistics.median(slow),
              "baseline_p95": _p(slow, 0.95)}
    print(f"pocare.patients.chain.propose: p50 {result['p50']:.1f} ms, p95 {result['p95']:.1f} ms ({rounds} rounds)")
    print(f"per-site linear scan:          p50 {result['baseline_p50']:.1f} ms, p95 {result['baseline_p95']:.1f} ms "
          f"({baseline_rounds} rounds)")
    print(f"speed-up (p50): {result['baseline_p50'] / result['p50']:.1f}×; target p95 < {TARGET_MS:.0f} ms: "
          f"{'met' if result['p95'] < TARGET_MS else 'NOT met'}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 sites, 5 rounds")
    parser.add_argument("--sites", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--baseline-rounds", type=int, default=10)
    parser.add_argument("--chain-only", action="store_true", help="skip the FHIR benchmark")
    args = parser.parse_args()
    sites, rounds, baseline_rounds = (50, 5, 3) if args.quick else (args.sites, args.rounds, args.baseline_rounds)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; 1-minute load {os.getloadavg()[0]:.2f}")
    bench_chain_run(sites, rounds, baseline_rounds)
    if not args.chain_only:
        fhir = Path(__file__).with_name("patients_fhir.py")
        quick = ["--backend", "sqlite", "--runs", "20", "--imports", "100"] if args.quick else []
        sys.stdout.flush()
        raise SystemExit(subprocess.call([sys.executable, str(fhir), *quick]))


if __name__ == "__main__":
    main()
