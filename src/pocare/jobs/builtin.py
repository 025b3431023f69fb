"""Tasks of the installation itself (below every domain app, so they live here)."""

from __future__ import annotations

from typing import Any

from pocare.jobs.tasks import task
from pocare.ledger import anchoring


@task(max_tries=3, label="Anchor the trail's heads")
def trail_anchor(*, slot: str = "") -> dict[str, Any]:
    """The hourly anchoring of the chains' heads (``pocare audit anchor``), as a job."""
    anchored = anchoring.anchor()
    return {"slot": slot, "digest": anchored.name, "heads": anchored.heads}


@task(max_tries=1, label="Trivial job (benchmarks, tests)")
def noop(**kwargs: Any) -> dict[str, Any]:
    """Does nothing and returns its arguments: the benchmark's and the tests' unit of work."""
    return kwargs
