"""The page benchmark (benchmarks/pages_at_scale.py) at a tiny size, so that it cannot rot: it builds
the grown demo and its bulk events on the test database, and times every page once or twice. What
is checked is what the benchmark's figures rest on, not its times: the data it builds (batches,
events whose chains verify, the subject keys object pages read) and that every page answers."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _bench() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module("pages_at_scale")
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_the_page_benchmark_builds_its_network_and_times_every_page():
    """The benchmark of issue 15 at 30 batches and 3,000 events: the bulk events continue the
    ledger as chains that verify, carry the COI and DIN keys the order page reads, and every page
    the URL resolver knows is timed with an object to show and answers without a server error."""
    from pocare.ledger.models import Event, EventSubject
    from pocare.ledger.verify import verify_all
    from pocare.manufacturing.models import Batch

    bench = _bench()
    bench.build(30, 3000, password=PASSWORD, say=lambda _: None)

    assert Batch.objects.count() >= 30
    assert Event.objects.count() >= 3000
    assert verify_all().ok, "the bulk events must form chains that verify"
    busy = bench.busiest()
    assert EventSubject.objects.filter(key=busy.order.coi).count() > 1

    every = bench.run_pages(repeat=0, warmup=0, only=None, password=PASSWORD, say=lambda _: None)
    untimed = [r["target"].name for r in every if not r["target"].url]
    assert not untimed, f"pages the benchmark could not name an object for: {untimed}"
    assert sum(r["target"].name.startswith("web:home") for r in every) == 9, "the home page of every role"

    # Timing every page would take minutes here: the object pages of the big data, the lists, home.
    results = bench.run_pages(repeat=2, warmup=0, only=r"^(manufacturing:batch|custody:order|trail:trail|api-batches)$"
                              r"|^web:home \(Control", password=PASSWORD, say=lambda _: None)
    assert {r["target"].name for r in results} == {"manufacturing:batch", "custody:order", "trail:trail",
                                                   "api-batches", "web:home (Control Site QA)"}
    assert all(r["status"] == 200 and r["p95"] > 0 and r["queries"] > 0 for r in results), results
    assert "| manufacturing:batch | qa |" in bench.table(results)
