"""Prometheus metrics at ``/metrics`` (docs/operations.md, "Metrics").

Two kinds, told apart on purpose:

- **This server's own**: how long requests take, by route name (the URL pattern's name, not the
  path: a path carries batch references and would make a series per batch), method and status
  class. They live in this process, as request metrics do: Prometheus scrapes each server on its
  own address and tells them apart by its ``instance`` label.
- **The installation's**, read from the database at each scrape, so every server reports the same
  figures and a restart loses nothing: events appended to the audit trail (from the chain heads,
  one row per chain and lane), the latest recorded verification of the trail, and every health
  check with its figures (the job queue's counts among them, through
  :data:`pocare.core.monitoring.HEALTH_CHECKS`).

``prometheus-client`` rather than django-prometheus: the latter labels by view name and adds its
own database and cache wrappers (a second database engine to configure); the plain client gives
the few metrics asked for, with the labels chosen here, on a registry of POCare's own.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator

from django.utils import timezone
from prometheus_client import (
    CollectorRegistry,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pocare.ledger.events import LedgerEvent
from pocare.ledger.models import ChainHead, Event, site_chain
from pocare.ops.health import health_run

# No `_created` series beside each counter and histogram: nothing reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=False)
ProcessCollector(registry=REGISTRY)

#: Methods named as such; anything else is "other" (a label value per made-up method would grow without bound).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUEST_SECONDS = Histogram(
    "pocare_http_request_duration_seconds",
    "Time to answer a request on this server, by route name, method and status class.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)


def request_observe(*, route: str, method: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(route=route, method=method if method in METHODS else "other",
                           status=f"{status // 100}xx").observe(seconds)


class InstallationCollector(Collector):
    """The figures read from the database at each scrape (the same on every server)."""

    def describe(self) -> Iterator[Metric]:
        return iter(())  # not collected on registration: that would query the database at import

    def collect(self) -> Iterator[Metric]:
        totals: dict[str, int] = defaultdict(int)
        for chain, seq in ChainHead.objects.values_list("chain", "seq"):
            totals[site_chain(chain)] += int(seq)
        events = CounterMetricFamily(
            "pocare_ledger_events", "Events appended to the audit trail, by site chain (its lanes summed).",
            labels=["chain"])
        for chain in sorted(totals):
            events.add_metric([chain], totals[chain])
        yield events

        verified = (Event.objects.filter(event_type=LedgerEvent.VERIFIED).order_by("-id")
                    .values_list("occurred_at", "new_values").first())
        ok = GaugeMetricFamily("pocare_ledger_last_verify_ok",
                               "1 when the latest recorded verification of the trail found it intact, 0 when "
                               "not, -1 when none is recorded.")
        age = GaugeMetricFamily("pocare_ledger_last_verify_age_seconds",
                                "Seconds since the latest recorded verification of the trail (-1: none).")
        if verified is None:
            ok.add_metric([], -1)
            age.add_metric([], -1)
        else:
            at, new_values = verified
            ok.add_metric([], 1 if json.loads(new_values).get("ok") is True else 0)
            age.add_metric([], (timezone.now() - at).total_seconds())
        yield ok
        yield age

        checks = health_run()
        passing = GaugeMetricFamily("pocare_health_check_ok", "1 when the health check passes, 0 when it fails.",
                                    labels=["check"])
        for check in checks:
            passing.add_metric([check.name], 1 if check.ok else 0)
        yield passing
        for check in checks:
            for figure, value in check.figures.items():
                yield GaugeMetricFamily(f"pocare_{check.name}_{figure}", f"The {check.name} check's {figure}.",
                                        value=float(value))


REGISTRY.register(InstallationCollector())


def metrics_text() -> bytes:
    """Everything, in Prometheus's text format."""
    return generate_latest(REGISTRY)
