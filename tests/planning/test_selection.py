"""Site selection against a brute-force search on small instances: every model's HiGHS optimum equals
the best of all site subsets; fixed sites stay open; the time limit is honoured."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import linprog

from pocare.planning import selection


def instance(seed: int, n: int = 14, m: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(1, 20, n), rng.uniform(5, 240, (n, m))


def coverage(w: np.ndarray, t: np.ndarray, sites: tuple[int, ...], s: float) -> float:
    return float(w[(t[:, list(sites)] <= s).any(axis=1)].sum())


def median(w: np.ndarray, t: np.ndarray, sites: tuple[int, ...]) -> float:
    return float((w * t[:, list(sites)].min(axis=1)).sum())


def capacitated_cost(d: np.ndarray, t: np.ndarray, sites: tuple[int, ...], cap: np.ndarray, penalty: float) -> float:
    """The optimal split assignment for a fixed set of open sites (a transportation LP) + unserved."""
    n, k = len(d), len(sites)
    cost = np.concatenate([(d[:, None] * t[:, list(sites)]).ravel(), d * penalty])
    a_eq = np.zeros((n, n * k + n))
    for i in range(n):
        a_eq[i, i * k:(i + 1) * k] = 1
        a_eq[i, n * k + i] = 1
    a_ub = np.zeros((k, n * k + n))
    for j in range(k):
        a_ub[j, [i * k + j for i in range(n)]] = d
    res = linprog(cost, A_ub=a_ub, b_ub=cap[list(sites)], A_eq=a_eq, b_eq=np.ones(n), bounds=(0, 1), method="highs")
    assert res.status == 0
    return float(res.fun)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("p", [1, 2, 3])
def test_mclp_and_pmedian_equal_brute_force(seed, p):
    w, t = instance(seed)
    subsets = list(itertools.combinations(range(t.shape[1]), p))
    mclp = selection.mclp(selection.Problem(weights=w, minutes=t, p=p, cover_minutes=90.0))
    assert mclp.optimal and mclp.gap <= 1e-4
    assert mclp.objective == pytest.approx(max(coverage(w, t, s, 90.0) for s in subsets), rel=1e-6)
    assert coverage(w, t, tuple(mclp.chosen), 90.0) == pytest.approx(mclp.objective, rel=1e-6)
    pm = selection.pmedian(selection.Problem(weights=w, minutes=t, p=p))
    assert pm.objective == pytest.approx(min(median(w, t, s) for s in subsets), rel=1e-6)
    assert median(w, t, tuple(pm.chosen)) == pytest.approx(pm.objective, rel=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_lscp_is_the_smallest_covering_set(seed):
    w, t = instance(seed)
    s = 100.0
    coverable = (t <= s).any(axis=1)
    sol = selection.lscp(selection.Problem(weights=w, minutes=t, cover_minutes=s))
    best = next(k for k in range(1, t.shape[1] + 1) for sub in itertools.combinations(range(t.shape[1]), k)
                if (t[coverable][:, list(sub)] <= s).any(axis=1).all())
    assert sol.objective == best == len(sol.chosen)
    assert (t[coverable][:, sol.chosen] <= s).any(axis=1).all()
    assert sol.extra["uncoverable_points"] == int((~coverable).sum())


@pytest.mark.parametrize("seed", range(3))
def test_capacitated_equals_brute_force(seed):
    w, t = instance(seed, n=10, m=6)
    cap = np.full(6, 0.4 * w.sum())
    penalty = 10.0 * (t.max() + 1.0)
    sol = selection.capacitated(selection.Problem(weights=w, minutes=t, p=2, demand=w, capacity=cap))
    best = min(capacitated_cost(w, t, s, cap, penalty) for s in itertools.combinations(range(6), 2))
    assert sol.objective == pytest.approx(best, rel=1e-6)
    load = (sol.assignment * w[:, None]).sum(axis=0)
    assert (load <= cap + 1e-6).all()
    assert sol.extra["unserved_patients"] == pytest.approx(max(0.0, w.sum() - 0.8 * w.sum()), rel=1e-4)


def test_fixed_sites_stay_open_and_bad_p_is_refused():
    w, t = instance(7)
    best_free = selection.mclp(selection.Problem(weights=w, minutes=t, p=2, cover_minutes=90))
    worst = min(range(7), key=lambda j: coverage(w, t, (j,), 90))
    fixed = selection.mclp(selection.Problem(weights=w, minutes=t, p=2, cover_minutes=90, fixed=(worst,)))
    assert worst in fixed.chosen and len(fixed.chosen) == 2
    assert fixed.objective <= best_free.objective + 1e-9
    with pytest.raises(ValueError, match=r"^p:"):
        selection.mclp(selection.Problem(weights=w, minutes=t, p=0))
    with pytest.raises(ValueError, match=r"^p:"):
        selection.mclp(selection.Problem(weights=w, minutes=t, p=1, fixed=(0, 1)))
    with pytest.raises(ValueError, match=r"^model:"):
        selection.solve("nope", selection.Problem(weights=w, minutes=t, p=1))


def test_the_time_limit_is_honoured_and_the_gap_reported():
    rng = np.random.default_rng(3)
    n, m = 1500, 200
    w = rng.uniform(1, 100, n)
    t = rng.uniform(0, 600, (n, m))
    sol = selection.mclp(selection.Problem(weights=w, minutes=t, p=15, cover_minutes=60), time_limit=0.3)
    assert sol.seconds < 2.0
    assert sol.gap >= 0
    assert sol.optimal or sol.status.lower().startswith("time limit")
    assert sol.bound >= sol.objective - 1e-6


def test_a_run_stopped_before_any_solution_of_its_own_returns_the_greedy_start():
    """A planning run cut short by its time limit (here before HiGHS has solved its root LP) still
    answers with p sites: the greedy solution it was started from, its gap unknown (infinite)."""
    rng = np.random.default_rng(3)
    n, m = 1500, 200
    w, t = rng.uniform(1, 100, n), rng.uniform(0, 600, (n, m))
    problem = selection.Problem(weights=w, minutes=t, p=15, cover_minutes=60, fixed=(4,))
    sol = selection.mclp(problem, time_limit=0.001)
    assert len(sol.chosen) == 15 and 4 in sol.chosen
    covered = (t[:, sol.chosen] <= 60).any(axis=1)
    assert sol.objective == pytest.approx(w[covered].sum())
    assert sol.optimal or sol.status.lower().startswith("time limit")


def test_the_greedy_start_is_within_1_minus_1_over_e_of_the_optimum():
    """The MIP start is the classic greedy for maximal covering: feasible, and never worse than
    (1 − 1/e) of the optimum (Nemhauser, Wolsey & Fisher 1978)."""
    rng = np.random.default_rng(11)
    for _ in range(5):
        n, m, p = 120, 25, 4
        w, t = rng.uniform(1, 100, n), rng.uniform(0, 300, (n, m))
        cover = selection.coverage_matrix(t, 60)
        x = selection._greedy_cover(cover, w, p, [])
        assert x.sum() == p
        greedy = w[(cover @ x) > 0].sum()
        best = selection.mclp(selection.Problem(weights=w, minutes=t, p=p, cover_minutes=60)).objective
        assert (1 - 1 / np.e) * best - 1e-6 <= greedy <= best + 1e-6


def test_access_counts_coverage_and_load():
    t = np.array([[10.0, 200.0], [70.0, 30.0], [150.0, 130.0]])
    pop = np.array([1000.0, 2000.0, 3000.0])
    pat = np.array([1.0, 2.0, 3.0])
    a = selection.access(t, [0, 1], pop, pat)
    assert a.population_1h == 3000 and a.population_2h == 3000
    assert a.patients_2h == 3.0 and a.load == [1.0, 5.0]
    assert a.mean_minutes == pytest.approx((10 + 60 + 390) / 6)
    assert a.p90_minutes == 130.0
