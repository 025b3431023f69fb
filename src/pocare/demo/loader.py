"""The whole demo, in the order a network would come to be: people, master file, sites' governance,
training, the history, the live batches, the quality system's follow-up and the comparability
monitor. ``pocare demo`` calls :func:`load`; so do tests that want the whole network."""

from __future__ import annotations

from collections.abc import Callable

from pocare.analytics.services import comparability_monitor_run
from pocare.demo import batches, masterfile, network, quality, training
from pocare.demo.history import HistorySummary, load_history
from pocare.demo.people import DEMO_PASSWORD, DemoLogin, load_people


def load(*, password: str = DEMO_PASSWORD, history: bool = True,
         on_history: Callable[[HistorySummary], None] | None = None) -> list[DemoLogin]:
    """The whole demo: the network and its people, then its governance — the CD19 CAR-T master
    file (v1 effective, v2 from a change request), units, site authorizations, the Porto site in
    qualification, and signed training records (v2 effective at Madrid only, the other sites
    still on v1 until their operators are trained) — and, with ``history``, about 18 months of
    manufacturing history under v1 (``pocare.demo.history``; loaded, not executed), whose
    summary goes to ``on_history``; then the live batch record, executed through the services (a
    batch in progress at Madrid, an order ready to start at Lisbon, one to accept at Dublin).
    Idempotent."""
    logins = load_people(password=password)
    v1 = masterfile.load_product_and_v1(password=password)
    network.load(password=password, product=v1.product)
    training.load(password=password, versions=[v1])
    change = masterfile.load_change_v2(password=password)
    training.load(password=password, versions=[v1, change.version])
    if history:
        summary = load_history()
        if on_history is not None:
            on_history(summary)
    batches.load_live(versions=[v1, change.version], password=password)
    quality.load(password=password)
    comparability_monitor_run()  # the comparability monitor over the history: signals for QA to resolve
    return logins
