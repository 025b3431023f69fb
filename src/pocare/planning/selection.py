"""Site selection as mixed-integer programmes solved with HiGHS (``highspy``): maximal covering
(MCLP), p-median, set covering (LSCP) and a capacitated p-median. Existing sites can be fixed open.
The constraint matrices are built sparse (CSC) and passed to HiGHS in one call; the solver's status,
objective, optimality gap and time are reported, and a time limit is honoured.
No Django import (a library module)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import highspy as _highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

highspy: Any = _highspy  # the bindings carry no type hints
MODELS = ("mclp", "pmedian", "lscp", "capacitated")
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Problem:
    """Demand weights (n), travel minutes (n × m candidates), which candidates are fixed open, p,
    the coverage standard in minutes and, for the capacitated model, demand and capacity."""

    weights: FloatArray
    minutes: FloatArray
    p: int = 0
    cover_minutes: float = 120.0
    fixed: tuple[int, ...] = ()
    demand: FloatArray | None = None  # patients per year per point (capacitated model)
    capacity: FloatArray | None = None  # patients per year per candidate (capacitated model)

    def __post_init__(self) -> None:
        n, m = self.minutes.shape
        if self.weights.shape != (n,):
            raise ValueError("weights: one weight per demand point.")
        if np.any(self.weights < 0):
            raise ValueError("weights: must be ≥ 0.")
        if any(not 0 <= j < m for j in self.fixed):
            raise ValueError("fixed: a fixed site is not among the candidates.")
        if self.cover_minutes <= 0:
            raise ValueError("cover_minutes: must be > 0.")


@dataclass
class Solution:
    """What HiGHS found."""

    model: str
    chosen: list[int]
    objective: float
    status: str
    optimal: bool
    gap: float  # relative MIP gap at the end (0 = proven optimal)
    bound: float
    seconds: float  # solver time
    build_seconds: float  # model construction time
    assignment: FloatArray | None = None  # n × m shares (capacitated model)
    unserved: FloatArray | None = None  # patients per point not assigned (capacitated model)
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"model": self.model, "chosen": self.chosen, "objective": self.objective, "status": self.status,
                "optimal": self.optimal, "gap": self.gap, "bound": self.bound, "seconds": round(self.seconds, 4),
                "build_seconds": round(self.build_seconds, 4), **self.extra}


def _solve(*, model: str, cost: FloatArray, lower: FloatArray, upper: FloatArray, integer: npt.NDArray[np.bool_],
           a: sp.csc_matrix, row_lower: FloatArray, row_upper: FloatArray, maximize: bool, time_limit: float,
           mip_rel_gap: float, threads: int | None, started: float,
           start: FloatArray | None = None) -> tuple[FloatArray, Solution]:
    """Solve the MIP. ``start`` is a feasible solution handed to HiGHS as its first incumbent, so
    that a run stopped by its time limit still returns the best solution known, with its gap."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    if threads:
        h.setOptionValue("threads", int(threads))
    lp = highspy.HighsLp()
    lp.num_col_ = int(a.shape[1])
    lp.num_row_ = int(a.shape[0])
    lp.col_cost_ = cost
    lp.col_lower_ = lower
    lp.col_upper_ = upper
    lp.row_lower_ = row_lower
    lp.row_upper_ = row_upper
    lp.sense_ = highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a.indptr.astype(np.int32)
    lp.a_matrix_.index_ = a.indices.astype(np.int32)
    lp.a_matrix_.value_ = a.data.astype(float)
    lp.a_matrix_.num_col_ = lp.num_col_
    lp.a_matrix_.num_row_ = lp.num_row_
    lp.integrality_ = [highspy.HighsVarType.kInteger if b else highspy.HighsVarType.kContinuous for b in integer]
    h.passModel(lp)
    if start is not None:
        initial = highspy.HighsSolution()
        initial.col_value = list(map(float, start))
        initial.value_valid = True
        h.setSolution(initial)
    built = time.perf_counter()
    h.run()
    seconds = time.perf_counter() - built
    status = h.getModelStatus()
    info = h.getInfo()
    text = h.modelStatusToString(status)
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    if not has_solution:
        raise RuntimeError(f"{model}: HiGHS found no feasible solution ({text}).")
    x = np.asarray(h.getSolution().col_value, dtype=float)
    gap = float(info.mip_gap) if np.isfinite(info.mip_gap) else float("inf")
    solution = Solution(model=model, chosen=[], objective=float(info.objective_function_value), status=text,
                        optimal=status == highspy.HighsModelStatus.kOptimal, gap=max(0.0, gap),
                        bound=float(info.mip_dual_bound), seconds=seconds, build_seconds=built - started)
    return x, solution


def _site_bounds(m: int, fixed: Sequence[int]) -> tuple[FloatArray, FloatArray]:
    lower = np.zeros(m)
    lower[list(fixed)] = 1.0
    return lower, np.ones(m)


def coverage_matrix(minutes: FloatArray, cover_minutes: float) -> sp.csr_matrix:
    """a_ij = 1 when candidate j is within the standard of point i."""
    return sp.csr_matrix(minutes <= cover_minutes, dtype=float)


def _greedy_cover(cover: sp.csr_matrix, weights: FloatArray, p: int, fixed: Sequence[int]) -> FloatArray:
    """A feasible MCLP start: the fixed sites, then one at a time the site that covers the most
    weight not yet covered (the classic greedy, within 1 − 1/e of the optimum)."""
    x = np.zeros(cover.shape[1])
    x[list(fixed)] = 1.0
    covered = cover @ x > 0
    by_site = cover.T.tocsr()
    while x.sum() < p:
        gain = by_site @ np.where(covered, 0.0, weights)
        gain[x > 0] = -1.0
        best = int(np.argmax(gain))
        x[best] = 1.0
        covered[by_site[best].indices] = True
    return x


def mclp(problem: Problem, *, time_limit: float = 60.0, mip_rel_gap: float = 1e-4,
         threads: int | None = None) -> Solution:
    """Maximal covering (Church & ReVelle 1974): open exactly p sites to maximise the weight within
    ``cover_minutes``. Variables x_j (binary, open) and y_i ∈ [0, 1] (covered — integral at the optimum
    because the weights are ≥ 0); rows y_i − Σ_{j∈N_i} x_j ≤ 0 and Σ x_j = p."""
    started = time.perf_counter()
    m = problem.minutes.shape[1]
    _check_p(problem, m)
    cover = coverage_matrix(problem.minutes, problem.cover_minutes)
    coverable = np.asarray(cover.sum(axis=1)).ravel() > 0
    idx = np.nonzero(coverable)[0]  # a point no candidate reaches can never count: leave it out
    k = idx.size
    # columns: x (m) then y (k); rows: k coverage rows then the cardinality row
    reach = cover[idx]
    top = sp.hstack([-reach, sp.identity(k, format="csr")], format="csr")
    card = sp.csr_matrix(np.concatenate([np.ones(m), np.zeros(k)])[None, :])
    a = sp.vstack([top, card], format="csc")
    xl, xu = _site_bounds(m, problem.fixed)
    start_x = _greedy_cover(reach, problem.weights[idx], problem.p, problem.fixed)
    start_y = (reach @ start_x > 0).astype(float)
    x, sol = _solve(model="mclp", cost=np.concatenate([np.zeros(m), problem.weights[idx]]),
                    lower=np.concatenate([xl, np.zeros(k)]), upper=np.concatenate([xu, np.ones(k)]),
                    integer=np.concatenate([np.ones(m, bool), np.zeros(k, bool)]), a=a,
                    row_lower=np.concatenate([np.full(k, -np.inf), [problem.p]]),
                    row_upper=np.concatenate([np.zeros(k), [problem.p]]), maximize=True, time_limit=time_limit,
                    mip_rel_gap=mip_rel_gap, threads=threads, started=started,
                    start=np.concatenate([start_x, start_y]))
    sol.chosen = _open(x[:m])
    sol.extra = {"coverable_weight": float(problem.weights[idx].sum()), "total_weight": float(problem.weights.sum())}
    return sol


def pmedian(problem: Problem, *, time_limit: float = 60.0, mip_rel_gap: float = 1e-4,
            threads: int | None = None) -> Solution:
    """p-median (Hakimi; ReVelle & Swain 1970): open p sites minimising Σ w_i t_ij z_ij with every
    point assigned (Σ_j z_ij = 1) to an open site (z_ij ≤ x_j). n × m assignment columns: meant for
    hundreds of points, not thousands."""
    return _assignment(problem, "pmedian", time_limit, mip_rel_gap, threads)


def capacitated(problem: Problem, *, time_limit: float = 60.0, mip_rel_gap: float = 1e-4,
                threads: int | None = None, unserved_penalty: float | None = None) -> Solution:
    """Capacitated p-median: as p-median, and each open site serves at most its capacity in patients
    per year (Σ_i d_i z_ij ≤ cap_j x_j). A point's demand may be split between sites. Demand that no
    open capacity can take goes to an "unserved" column at a penalty (default 10 × the longest trip),
    so the model is always feasible and the unserved patients are reported."""
    if problem.demand is None or problem.capacity is None:
        raise ValueError("capacity: the capacitated model needs demand and capacity per candidate.")
    return _assignment(problem, "capacitated", time_limit, mip_rel_gap, threads, unserved_penalty)


def _assignment(problem: Problem, model: str, time_limit: float, mip_rel_gap: float, threads: int | None,
                unserved_penalty: float | None = None) -> Solution:
    started = time.perf_counter()
    n, m = problem.minutes.shape
    _check_p(problem, m)
    cap = model == "capacitated"
    nz = n * m
    # columns: x (m), z (n*m, row-major i*m+j), [u (n) unserved]
    rows_i = np.repeat(np.arange(n), m)
    cols_z = m + np.arange(nz)
    ncols = m + nz + (n if cap else 0)
    blocks_r: list[npt.NDArray[Any]] = []
    blocks_c: list[npt.NDArray[Any]] = []
    blocks_v: list[npt.NDArray[Any]] = []
    # assignment rows 0..n-1: Σ_j z_ij (+ u_i) = 1
    blocks_r += [rows_i]
    blocks_c += [cols_z]
    blocks_v += [np.ones(nz)]
    if cap:
        blocks_r += [np.arange(n)]
        blocks_c += [m + nz + np.arange(n)]
        blocks_v += [np.ones(n)]
    # linking rows n..n+nz-1: z_ij − x_j ≤ 0
    link = n + np.arange(nz)
    blocks_r += [link, link]
    blocks_c += [cols_z, np.tile(np.arange(m), n)]
    blocks_v += [np.ones(nz), -np.ones(nz)]
    r = n + nz
    # cardinality row
    blocks_r += [np.full(m, r)]
    blocks_c += [np.arange(m)]
    blocks_v += [np.ones(m)]
    nrows = r + 1
    if cap:
        assert problem.demand is not None and problem.capacity is not None
        # capacity rows: Σ_i d_i z_ij − cap_j x_j ≤ 0
        cap_rows = nrows + np.tile(np.arange(m), n)
        blocks_r += [cap_rows, nrows + np.arange(m)]
        blocks_c += [cols_z, np.arange(m)]
        blocks_v += [np.repeat(problem.demand, m), -problem.capacity.astype(float)]
        nrows += m
    a = sp.csc_matrix((np.concatenate(blocks_v), (np.concatenate(blocks_r), np.concatenate(blocks_c))),
                      shape=(nrows, ncols))
    weight = problem.demand if cap and problem.demand is not None else problem.weights
    cost = np.concatenate([np.zeros(m), (weight[:, None] * problem.minutes).ravel()])
    if cap:
        penalty = unserved_penalty if unserved_penalty is not None else 10.0 * float(problem.minutes.max() + 1.0)
        cost = np.concatenate([cost, weight * penalty])
    xl, xu = _site_bounds(m, problem.fixed)
    lower = np.concatenate([xl, np.zeros(ncols - m)])
    upper = np.concatenate([xu, np.ones(ncols - m)])
    row_lower = np.concatenate([np.ones(n), np.full(nz, -np.inf), [problem.p], np.full(nrows - r - 1, -np.inf)])
    row_upper = np.concatenate([np.ones(n), np.zeros(nz), [problem.p], np.zeros(nrows - r - 1)])
    x, sol = _solve(model=model, cost=cost, lower=lower, upper=upper,
                    integer=np.concatenate([np.ones(m, bool), np.zeros(ncols - m, bool)]), a=a,
                    row_lower=row_lower, row_upper=row_upper, maximize=False, time_limit=time_limit,
                    mip_rel_gap=mip_rel_gap, threads=threads, started=started)
    sol.chosen = _open(x[:m])
    sol.assignment = x[m:m + nz].reshape(n, m)
    if cap:
        assert problem.demand is not None
        sol.unserved = x[m + nz:] * problem.demand
        sol.extra = {"unserved_patients": float(sol.unserved.sum())}
    return sol


def lscp(problem: Problem, *, time_limit: float = 60.0, mip_rel_gap: float = 1e-4,
         threads: int | None = None) -> Solution:
    """Set covering (Toregas et al. 1971): the fewest sites such that every coverable point has a site
    within ``cover_minutes`` (points no candidate reaches are reported, not made infeasible)."""
    started = time.perf_counter()
    n, m = problem.minutes.shape
    cover = coverage_matrix(problem.minutes, problem.cover_minutes)
    coverable = np.asarray(cover.sum(axis=1)).ravel() > 0
    a = cover[np.nonzero(coverable)[0]].tocsc()
    k = a.shape[0]
    xl, xu = _site_bounds(m, problem.fixed)
    x, sol = _solve(model="lscp", cost=np.ones(m), lower=xl, upper=xu, integer=np.ones(m, bool), a=a,
                    row_lower=np.ones(k), row_upper=np.full(k, np.inf), maximize=False, time_limit=time_limit,
                    mip_rel_gap=mip_rel_gap, threads=threads, started=started)
    sol.chosen = _open(x)
    sol.extra = {"uncoverable_points": int(n - k)}
    return sol


def solve(model: str, problem: Problem, **options: Any) -> Solution:
    """Dispatch by model name (``mclp``, ``pmedian``, ``lscp``, ``capacitated``)."""
    solvers = {"mclp": mclp, "pmedian": pmedian, "lscp": lscp, "capacitated": capacitated}
    if model not in solvers:
        raise ValueError(f"model: {model!r} unknown; use one of {', '.join(MODELS)}.")
    result: Solution = solvers[model](problem, **options)
    return result


def _check_p(problem: Problem, m: int) -> None:
    if not 1 <= problem.p <= m:
        raise ValueError(f"p: choose between 1 and {m} sites (the number of candidates).")
    if len(set(problem.fixed)) > problem.p:
        raise ValueError(f"p: {len(set(problem.fixed))} sites are fixed open, more than p = {problem.p}.")


def _open(x: FloatArray) -> list[int]:
    return [int(j) for j in np.nonzero(x > 0.5)[0]]


@dataclass(frozen=True)
class Access:
    """How well a set of open sites serves the demand (nearest open site, or an assignment)."""

    population: int
    patients: float
    population_1h: float
    population_2h: float
    patients_1h: float
    patients_2h: float
    mean_minutes: float  # patient-weighted
    p90_minutes: float  # patient-weighted
    load: list[float]  # patients per year per open site, in the order of ``sites``
    sites: list[int]

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def weighted_quantile(values: FloatArray, weights: FloatArray, q: float) -> float:
    if values.size == 0 or weights.sum() <= 0:
        return float("nan")
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    return float(values[order][min(int(np.searchsorted(cum, q * cum[-1])), values.size - 1)])


def access(minutes: FloatArray, sites: Sequence[int], population: FloatArray, patients: FloatArray,
           assignment: FloatArray | None = None) -> Access:
    """Coverage within 1 h and 2 h, mean and p90 travel, and load per site (by nearest open site, or
    by the capacitated model's assignment)."""
    sites = list(sites)
    if not sites:
        nan = float("nan")
        return Access(int(population.sum()), float(patients.sum()), 0.0, 0.0, 0.0, 0.0, nan, nan, [], [])
    t = minutes[:, sites]
    nearest = t.min(axis=1)
    if assignment is not None:
        load = (assignment[:, sites] * patients[:, None]).sum(axis=0)
    else:
        load = np.bincount(t.argmin(axis=1), weights=patients, minlength=len(sites))
    return Access(population=int(population.sum()), patients=float(patients.sum()),
                  population_1h=float(population[nearest <= 60].sum()),
                  population_2h=float(population[nearest <= 120].sum()),
                  patients_1h=float(patients[nearest <= 60].sum()), patients_2h=float(patients[nearest <= 120].sum()),
                  mean_minutes=float(np.average(nearest, weights=patients)) if patients.sum() > 0 else float("nan"),
                  p90_minutes=weighted_quantile(nearest, patients, 0.9), load=[float(v) for v in load], sites=sites)
