"""Replications of the digital twin, in parallel on Dask: a LocalCluster (2 worker processes, one
thread each) by default, or a running cluster named by its scheduler address. Each replication's
seed is derived from the run's seed by ``numpy.random.SeedSequence(seed).spawn(n)``, so the results
are the same for the same seed whether run in-process, locally or on a cluster.
No Django import (a library module)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from pocare.planning import twin

IN_PROCESS = "in-process"
SUMMARY_KEYS = ("share_treated", "treated", "lost_progression", "lost_failure", "v2v_median", "v2v_p90",
                "r2i_median", "r2i_p90", "slot_wait_mean", "utilization", "queue_mean", "cost_per_treated")


def replication_seeds(seed: int, n: int) -> list[int]:
    """One 64-bit seed per replication, independent streams (SeedSequence.spawn)."""
    if n < 1:
        raise ValueError("replications: at least 1.")
    return [int(child.generate_state(1, np.uint64)[0]) for child in np.random.SeedSequence(int(seed)).spawn(n)]


def _one(config: Mapping[str, Any], seed: int) -> dict[str, Any]:
    return twin.simulate(twin.config_from_dict(config), seed)


def run_replications(config: twin.TwinConfig | Mapping[str, Any], n: int, seed: int,
                     scheduler: str | None = None,
                     progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """Run ``n`` replications and return their KPIs in replication order. ``scheduler``: ``None`` for
    a LocalCluster with 2 processes (closed afterwards), ``"in-process"`` to run here one after the
    other, or a Dask scheduler address (``tcp://host:8786``). ``progress(done, n)`` after each."""
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
    import distributed  # late: dask.distributed is slow to import; only parallel replications need it

    dd: Any = distributed  # untyped library
    Client, LocalCluster, as_completed = dd.Client, dd.LocalCluster, dd.as_completed
    cluster: Any = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=40)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        futures = [client.submit(_one, data, s, pure=False, key=f"twin-{seed}-{i}") for i, s in enumerate(seeds)]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[dict[str, Any] | None] = [None] * n
        for done, future in enumerate(as_completed(futures), 1):
            results[index[future.key]] = future.result()
            if progress:
                progress(done, n)
        return [r for r in results if r is not None]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


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
