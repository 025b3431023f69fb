"""Replications of the digital twin, in parallel on Dask: a LocalCluster (2 worker processes, one
thread each) by default, or a running cluster named by its scheduler address. Each replication's
seed is derived from the run's seed by ``numpy.random.SeedSequence(seed).spawn(n)``, so the results
are the same for the same seed whether run in-process, locally or on a cluster.
No Django import (a library module)."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast

import numpy as np

from pocare.planning import twin

IN_PROCESS = "in-process"
SUMMARY_KEYS = ("share_treated", "referred", "ineligible", "treated", "lost_progression", "lost_waiting",
                "lost_failure", "transport_hours_mean", "v2v_median", "v2v_p90",
                "r2i_median", "r2i_p90", "slot_wait_mean", "utilization", "queue_mean", "cost_per_treated",
                "delayed_supply", "lost_supply", "supply_wait_mean", "kits_site", "kits_depot")


def replication_seeds(seed: int, n: int) -> list[int]:
    """One 64-bit seed per replication, independent streams (SeedSequence.spawn)."""
    if n < 1:
        raise ValueError("replications: at least 1.")
    return [int(child.generate_state(1, np.uint64)[0]) for child in np.random.SeedSequence(int(seed)).spawn(n)]


def _one(config: Mapping[str, Any], seed: int) -> dict[str, Any]:
    return twin.simulate(twin.config_from_dict(config), seed)


def run_replications(config: twin.TwinConfig | Mapping[str, Any], n: int, seed: int,
                     scheduler: str | None = None,
                     progress: Callable[[int, int], None] | None = None, *,
                     dashboard: str | None = None, verbose: bool = False) -> list[dict[str, Any]]:
    """Run ``n`` replications and return their KPIs in replication order. ``scheduler``: ``None`` for
    a LocalCluster with 2 processes (closed afterwards), ``"in-process"`` to run here one after the
    other, or a Dask scheduler address (``tcp://host:8786``). ``progress(done, n)`` after each.
    The LocalCluster is quiet (its INFO logs hidden unless ``verbose``) and serves no dashboard
    unless ``dashboard`` names an address (``:8787``)."""
    data = twin.config_to_dict(config) if isinstance(config, twin.TwinConfig) else dict(config)
    twin.config_from_dict(data)  # validate before shipping it anywhere
    seeds = replication_seeds(seed, n)
    if scheduler == IN_PROCESS:
        out = []
        for i, s in enumerate(seeds):
            out.append(_one(data, s))
            if progress:
                progress(i + 1, n)
        return out
    import distributed  # noqa: F401 - late: slow to import; it sets its loggers' levels, quietened below

    with contextlib.ExitStack() as stack:
        if not verbose:
            stack.enter_context(quiet_cluster_logs())
        client = stack.enter_context(_client(scheduler, dashboard))
        futures = [client.submit(_one, data, s, pure=False, key=f"twin-{seed}-{i}") for i, s in enumerate(seeds)]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[dict[str, Any] | None] = [None] * n
        for done, future in enumerate(_as_completed(futures), 1):
            results[index[future.key]] = future.result()
            if progress:
                progress(done, n)
        return [r for r in results if r is not None]


#: Loggers of the Dask cluster. Their INFO lines (scheduler, nanny, worker and comm events, about 35
#: per run) went to the console: distributed gives its loggers a handler of their own at INFO, in
#: this process and in each process the cluster starts (those read their levels from the environment).
CLUSTER_LOGGERS = ("distributed", "bokeh", "tornado")
CLUSTER_LOG_ENV = "DASK_LOGGING__DISTRIBUTED"


@contextlib.contextmanager
def quiet_cluster_logs(level: int = logging.WARNING) -> Iterator[None]:
    """Only warnings and errors of the cluster's loggers while the block runs, here and in the
    processes it starts (levels and environment restored; a level the user set in the environment
    is kept)."""
    loggers = [logging.getLogger(name) for name in CLUSTER_LOGGERS]
    before = [logger.level for logger in loggers]
    env_before = os.environ.get(CLUSTER_LOG_ENV)
    for logger in loggers:
        logger.setLevel(max(level, logger.getEffectiveLevel()))
    if env_before is None:
        os.environ[CLUSTER_LOG_ENV] = logging.getLevelName(level).lower()
    try:
        yield
    finally:
        for logger, old in zip(loggers, before, strict=True):
            logger.setLevel(old)
        if env_before is None:
            os.environ.pop(CLUSTER_LOG_ENV, None)


@contextlib.contextmanager
def _client(scheduler: str | None, dashboard: str | None) -> Iterator[Any]:
    """A Dask client of the named scheduler, or of a LocalCluster (2 processes) made for the block.
    Without ``dashboard`` the local scheduler has no dashboard, and its HTTP endpoint (which Dask
    always starts, by default on port 8787) listens on a free port of the loopback only."""
    import distributed  # late, as above

    dd: Any = distributed  # untyped library
    if scheduler is not None:
        client = dd.Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    http = {} if dashboard else {"dashboard": False, "dashboard_address": "127.0.0.1:0"}
    with dd.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=dashboard,
                         silence_logs=logging.ERROR, scheduler_kwargs=http) as cluster, dd.Client(cluster) as client:
        yield client


def _as_completed(futures: Sequence[Any]) -> Iterator[Any]:
    import distributed  # late, as above

    dd: Any = distributed  # untyped library
    return cast(Iterator[Any], dd.as_completed(futures))


def summarize(results: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Mean and a 95 % confidence half-width (normal approximation over replications) per KPI."""
    out: dict[str, dict[str, float | None]] = {}
    for key in SUMMARY_KEYS:
        values = [float(r[key]) for r in results if r.get(key) is not None]
        if not values:
            out[key] = {"mean": None, "half_width": None, "n": 0}
            continue
        half = 1.96 * statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None
        out[key] = {"mean": statistics.fmean(values), "half_width": half, "n": len(values)}
    return out
