"""Replications on Dask give the same results as in-process for the same seed."""

from __future__ import annotations

from pocare.planning import replications, twin


def test_seeds_are_deterministic_and_distinct():
    a = replications.replication_seeds(7, 5)
    assert a == replications.replication_seeds(7, 5) and len(set(a)) == 5
    assert replications.replication_seeds(7, 3) == a[:3]


def test_local_cluster_equals_in_process():
    cfg = twin.synthetic_network(sites=4, referrals_per_year=400, units_per_site=2)
    here = replications.run_replications(cfg, 2, seed=11, scheduler=replications.IN_PROCESS)
    seen: list[int] = []
    there = replications.run_replications(cfg, 2, seed=11, progress=lambda done, n: seen.append(done))
    assert here == there
    assert here[0] != here[1]
    assert sorted(seen) == [1, 2]
    summary = replications.summarize(here)
    assert summary["share_treated"]["n"] == 2
