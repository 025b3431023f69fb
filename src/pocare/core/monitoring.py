"""What the installation's health is made of, asked of the apps that know (docs/operations.md).

``/health/`` and ``/metrics`` (``pocare.ops``) ask :data:`HEALTH_CHECKS`; every app that owns
something worth watching answers with one :class:`HealthCheck` (or a list of them): ``ops``
answers for the database, the migrations, the digest store and the ledger's triggers; the job
queue answers for itself from its ``AppConfig.ready()`` (``pocare.jobs.selectors.queue_check``)::

    from pocare.core.monitoring import HEALTH_CHECKS, HealthCheck

    def jobs_health() -> HealthCheck:
        h = queue_health()
        return HealthCheck("jobs", ok=h["worker_seen"], summary="...",
                           figures={"queued": h["queued"], "running": h["running"], "failed": h["failed"]})

    HEALTH_CHECKS.register(jobs_health)

A check's ``figures`` are numbers (counts, ages in seconds) that ``/metrics`` also publishes, as
``pocare_<check>_<figure>`` gauges: job counts reach Prometheus through this one question. A check
holds no secret and no personal data: it is shown to whoever holds the monitoring token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pocare.core.registry import Question

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class HealthCheck:
    """One part of the installation and whether it works: a short name (``database``, ``jobs``),
    ok or not, a sentence for people, and figures for machines."""

    name: str
    ok: bool
    summary: str = ""
    figures: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = [n for n in (self.name, *self.figures) if not _NAME.match(n)]
        if bad:
            raise ValueError(f"Health check and figure names are lower-case words joined by '_': not {bad!r}")


HEALTH_CHECKS: Question[HealthCheck | list[HealthCheck]] = Question(
    "core.health_checks",
    "Is this part of the installation working? One HealthCheck (or a list), cheap enough to run at "
    "every probe of the load balancer and every Prometheus scrape.",
)
