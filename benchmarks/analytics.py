"""Comparability analytics benchmark (GitHub issue 6): 100 sites × 20 attributes × 1,000 batches
(2 million QC values). Every chart's rules (individuals limits, the eight Nelson and four Western
Electric rules, EWMA, tabular CUSUM), capability (Cp, Cpk, Ppk with intervals) and TOST of each
site against the rest of the network, per attribute — once with ``pocare.analytics`` (vectorized),
once with the straightforward per-group pandas/statsmodels loop, in the same process and run. The
two must agree (flag counts, capability, TOST p-values) before any time is reported.

    .venv/bin/python benchmarks/analytics.py              # full run (the baseline loop takes a while)
    .venv/bin/python benchmarks/analytics.py --quick      # 10 sites: smoke run

Target: vectorized < 2 s, and ≥ 10× faster than the baseline.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.weightstats import ttost_ind

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from pocare.analytics import capability as cap
from pocare.analytics import equivalence as eq
from pocare.analytics import spc

BASELINE_LOTS = 30
LAM, EWMA_L, K, H = 0.2, 3.0, 0.5, 5.0
RULE_IDS = [r.id for r in (*spc.NELSON_RULES, *spc.WESTERN_ELECTRIC_RULES)]


def make_data(sites: int, attributes: int, batches: int, seed: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """values[attribute, site, batch]; specification limits per attribute; a few sites drift."""
    rng = np.random.default_rng(seed)
    centre = rng.uniform(10, 100, attributes)
    sd = centre * rng.uniform(0.02, 0.1, attributes)
    values = centre[:, None, None] + sd[:, None, None] * rng.standard_normal((attributes, sites, batches))
    drift = rng.random((attributes, sites)) < 0.05
    ramp = np.linspace(0, 2, batches)
    values += np.where(drift[:, :, None], sd[:, None, None] * ramp, 0.0)
    lsl = centre - 4 * sd
    usl = np.where(np.arange(attributes) % 3 == 0, np.nan, centre + 4 * sd)  # every third one-sided
    return values, lsl, usl


def vectorized(values: np.ndarray, lsl: np.ndarray, usl: np.ndarray) -> dict[str, np.ndarray]:
    a, s, n = values.shape
    flat = values.reshape(a * s, n)
    chart = spc.chart_analyse(flat, baseline=BASELINE_LOTS, lam=LAM, ewma_width=EWMA_L, k=K, h=H)
    counts = {rule: chart.rules[rule].sum(axis=-1).reshape(a, s) for rule in RULE_IDS}
    counts["ewma"] = chart.ewma.flags.sum(axis=-1).reshape(a, s)
    counts["cusum"] = (chart.cusum.upper_flags | chart.cusum.lower_flags).sum(axis=-1).reshape(a, s)
    cpk = np.empty((a, s))
    ppk = np.empty((a, s))
    cpk_low = np.empty((a, s))
    for i in range(a):
        c = cap.capability(values[i], lsl=float(lsl[i]), usl=None if np.isnan(usl[i]) else float(usl[i]))
        cpk[i], ppk[i], cpk_low[i] = c.cpk, c.ppk, c.cpk_low
    m = eq.moments(values)  # shape (a, s)
    rest = eq.leave_one_out(m, axis=1)
    t = eq.tost_from_moments(n_test=m.n, mean_test=m.mean, var_test=m.var, n_ref=rest.n, mean_ref=rest.mean,
                             var_ref=rest.var, margin=eq.MARGIN_SD * np.sqrt(rest.var))
    return {**{f"n_{k}": v for k, v in counts.items()}, "cpk": cpk, "ppk": ppk, "cpk_low": cpk_low,
            "tost_p": t.p_value, "equivalent": t.equivalent}


def _run(mask: pd.Series, k: int) -> pd.Series:
    return mask.astype(float).rolling(k, min_periods=k).sum().eq(k)


def _count_at_least(mask: pd.Series, k: int, m: int) -> pd.Series:
    return mask.astype(float).rolling(k, min_periods=1).sum().ge(m) & mask


def baseline(values: np.ndarray, lsl: np.ndarray, usl: np.ndarray) -> dict[str, np.ndarray]:
    """The straightforward way: a long DataFrame, one group (site, attribute) at a time with pandas,
    scipy and statsmodels."""
    a, s, n = values.shape
    df = pd.DataFrame({"attribute": np.repeat(np.arange(a), s * n), "site": np.tile(np.repeat(np.arange(s), n), a),
                       "value": values.ravel()})
    out = {f"n_{k}": np.zeros((a, s)) for k in [*RULE_IDS, "ewma", "cusum"]}
    out.update({k: np.zeros((a, s)) for k in ["cpk", "ppk", "cpk_low", "tost_p"]})
    out["equivalent"] = np.zeros((a, s), dtype=bool)
    for ai, of_attribute in df.groupby("attribute", sort=True):
        for si, g in of_attribute.groupby("site", sort=True):
            _one_group(out, of_attribute, int(ai), int(si), g["value"].reset_index(drop=True), lsl, usl, n)
    return out


def _one_group(out: dict[str, np.ndarray], of_attribute: pd.DataFrame, ai: int, si: int, x: pd.Series,
               lsl: np.ndarray, usl: np.ndarray, n: int) -> None:
    base = x.iloc[:BASELINE_LOTS]
    centre = base.mean()
    sigma = base.diff().abs().mean() / spc.D2
    z = (x - centre) / sigma
    d = x.diff()
    zig = (d * d.shift(1)) < 0
    rising = _run(d > 0, 5)
    falling = _run(d < 0, 5)
    flags = {
        "nelson-1": z.abs() > 3,
        "nelson-2": _run(z > 0, 9) | _run(z < 0, 9),
        "nelson-3": rising | falling,
        "nelson-4": _run(zig, 12),
        "nelson-5": _count_at_least(z > 2, 3, 2) | _count_at_least(z < -2, 3, 2),
        "nelson-6": _count_at_least(z > 1, 5, 4) | _count_at_least(z < -1, 5, 4),
        "nelson-7": _run(z.abs() < 1, 15),
        "nelson-8": _run(z.abs() > 1, 8),
    }
    flags["we-1"], flags["we-2"], flags["we-3"] = flags["nelson-1"], flags["nelson-5"], flags["nelson-6"]
    flags["we-4"] = _run(z > 0, 8) | _run(z < 0, 8)
    for rule, f in flags.items():
        out[f"n_{rule}"][ai, si] = int(f.sum())
    ew = pd.concat([pd.Series([centre]), x], ignore_index=True).ewm(alpha=LAM, adjust=False).mean().iloc[1:]
    i = np.arange(1, n + 1)
    half = EWMA_L * sigma * np.sqrt(LAM / (2 - LAM) * (1 - (1 - LAM) ** (2 * i)))
    out["n_ewma"][ai, si] = int(((ew.to_numpy() > centre + half) | (ew.to_numpy() < centre - half)).sum())
    cp = cm = 0.0
    signals = 0
    for v in x:
        cp = max(0.0, v - (centre + K * sigma) + cp)
        cm = max(0.0, (centre - K * sigma) - v + cm)
        signals += (cp > H * sigma) or (cm > H * sigma)
    out["n_cusum"][ai, si] = signals
    mean, so, sw = x.mean(), x.std(ddof=1), x.diff().abs().mean() / spc.D2
    lo, hi = lsl[ai], usl[ai]
    cpk = (mean - lo) / (3 * sw) if np.isnan(hi) else min(hi - mean, mean - lo) / (3 * sw)
    ppk = (mean - lo) / (3 * so) if np.isnan(hi) else min(hi - mean, mean - lo) / (3 * so)
    z975 = stats.norm.ppf(0.975)
    out["cpk"][ai, si], out["ppk"][ai, si] = cpk, ppk
    out["cpk_low"][ai, si] = ppk - z975 * np.sqrt(1 / (9 * n) + ppk**2 / (2 * (n - 1)))  # from s
    rest = of_attribute.loc[of_attribute["site"] != si, "value"].to_numpy()
    margin = eq.MARGIN_SD * rest.std(ddof=1)
    p, _, _ = ttost_ind(x.to_numpy(), rest, -margin, margin, usevar="unequal")
    out["tost_p"][ai, si] = p
    out["equivalent"][ai, si] = p < 0.05


def _busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """How many cores the rest of the machine used while a block ran (machine busy time minus ours)."""

    def __enter__(self) -> OtherLoad:
        self.wall, self.busy, self.own = time.perf_counter(), _busy_seconds(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self.wall
        self.cores = max(0.0, (_busy_seconds() - self.busy) - (time.process_time() - self.own)) / wall


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0)
    return (f"{cpu}, {os.cpu_count()} cores, {mem / 1024 / 1024:.0f} GiB RAM; Python {platform.python_version()}, "
            f"numpy {np.__version__}, pandas {pd.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--attributes", type=int, default=20)
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5, help="vectorized runs (the best is reported)")
    parser.add_argument("--quick", action="store_true", help="10 sites instead of 100")
    args = parser.parse_args()
    sites = 10 if args.quick else args.sites
    values, lsl, usl = make_data(sites, args.attributes, args.batches)
    print(f"{sites} sites × {args.attributes} attributes × {args.batches} batches = {values.size:,} values")
    print(f"machine: {machine()}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    times = []
    with OtherLoad() as fast_load:
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fast = vectorized(values, lsl, usl)
            times.append(time.perf_counter() - t0)
    with OtherLoad() as slow_load:
        t0 = time.perf_counter()
        slow = baseline(values, lsl, usl)
        t_slow = time.perf_counter() - t0
    for key in fast:
        if key == "equivalent" or key.startswith("n_"):
            assert np.array_equal(fast[key], slow[key]), f"{key} differs"
        else:
            assert np.allclose(fast[key], slow[key], rtol=1e-8, atol=1e-10), f"{key} differs"
    best = min(times)
    flagged = {k: int((v > 0).sum()) for k, v in fast.items() if k.startswith("n_")}
    print(f"results agree: rule flag counts ({len(flagged)} rules), Cpk, Ppk, Cpk lower bound, TOST p, decision")
    print(f"charts with a flag: {flagged}")
    print(f"equivalent: {int(fast['equivalent'].sum())} of {fast['equivalent'].size} site × attribute")
    print(f"vectorized (pocare.analytics): best {best:.3f} s, median {sorted(times)[len(times) // 2]:.3f} s "
          f"of {len(times)} (other processes used {fast_load.cores:.2f} cores meanwhile)")
    print(f"baseline (pandas/statsmodels per group): {t_slow:.1f} s (other processes: {slow_load.cores:.2f} cores)")
    print(f"speed-up: {t_slow / best:.0f}×")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    fast_enough, ratio_ok = best < 2, t_slow / best >= 10
    print(f"target < 2 s: {'met' if fast_enough else 'NOT met'}; ≥ 10× baseline: {'met' if ratio_ok else 'NOT met'}")


if __name__ == "__main__":
    main()
