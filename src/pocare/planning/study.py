"""The two studies a planner runs, as plain functions of JSON parameters (so the command, the web
UI and a Dask worker run exactly the same thing): ``plan_study`` (demand → candidates → HiGHS →
access before and after) and ``twin_study`` (a scenario of the digital twin, replicated).
No Django import (a library module)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from pocare.planning import demand, diagnosis, replications, selection, travel, twin

#: A device runs one batch at a time, about 2–3 a month (DOMAIN.md, estimate): 2.5 × 12 = 30 a year.
BATCHES_PER_UNIT_YEAR = 30.0

PLAN_DEFAULTS: dict[str, Any] = {
    "region": "ES", "indications": ["lbcl"], "eligible": {}, "min_population": 15_000, "max_points": 4000,
    "model": "mclp", "p": 8, "cover_minutes": 120.0, "circuity": travel.DEFAULT_CIRCUITY,
    "speed_kmh": travel.DEFAULT_SPEED_KMH, "candidates": "cities", "max_candidates": 150, "hospitals": [],
    "existing": [], "fix_existing": True, "equity_strength": 0.0, "deprivation": {}, "deprivation_strength": 0.5,
    "units_per_new_site": 2, "batches_per_unit_year": BATCHES_PER_UNIT_YEAR, "time_limit": 60.0,
    "mip_rel_gap": 1e-4,
}


#: Set to 1 for a small run of any command (tests of the documented examples, a quick look): the
#: command stays the same, the sizes are capped and the output says so.
SMALL_RUN_ENV = "POCARE_PLANNING_SMALL"
SMALL_RUN_CAPS: dict[str, dict[str, float]] = {
    "plan": {"max_points": 200, "max_candidates": 30, "time_limit": 5.0},
    "twin": {"replications": 2, "horizon_days": 120.0},
}


def small_run(params: dict[str, Any], kind: str) -> str:
    """Cap ``params`` in place when the environment asks for a small run; the words that say so."""
    if os.environ.get(SMALL_RUN_ENV, "").strip() not in ("1", "true", "yes"):
        return ""
    defaults = PLAN_DEFAULTS if kind == "plan" else TWIN_DEFAULTS
    capped = []
    for key, cap in SMALL_RUN_CAPS[kind].items():
        value = params.get(key, defaults[key])
        if value is None or float(value) > cap:
            params[key] = type(defaults[key])(cap)
            capped.append(f"{key} {params[key]}")
    return (f"Small run ({SMALL_RUN_ENV}=1): {', '.join(capped)}; figures are not for decisions."
            if capped else "")


def json_safe(value: Any) -> Any:
    """The result as strict JSON: NaN and infinities become null (PostgreSQL's JSON refuses them)."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _site_rows(rows: Sequence[Mapping[str, Any]], field: str) -> list[dict[str, Any]]:
    out = []
    for k, r in enumerate(rows):
        try:
            lat, lon = float(r["latitude"]), float(r["longitude"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{field}: row {k + 1} needs a latitude and a longitude.") from exc
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError(f"{field}: row {k + 1} has coordinates out of range.")
        out.append({"name": str(r.get("name") or r.get("code") or f"{field} {k + 1}"), "code": str(r.get("code", "")),
                    "latitude": lat, "longitude": lon, "units": int(r.get("units", 0) or 0)})
    return out


def _candidates(p: Mapping[str, Any], points: Sequence[demand.DemandPoint],
                existing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The existing sites (first, flagged ``existing`` and ``in_region``), then the new candidates:
    the hospitals listed or the largest cities."""
    if p["candidates"] == "hospitals":
        new = _site_rows(p["hospitals"], "hospitals")
        if not new:
            raise ValueError("hospitals: list at least one hospital (name, latitude, longitude) or use cities.")
    elif p["candidates"] == "cities":
        k = int(p["max_candidates"])
        if k < 1:
            raise ValueError("max_candidates: at least 1.")
        new = [{"name": d.name, "code": "", "latitude": d.latitude, "longitude": d.longitude, "units": 0}
               for d in points[:k]]
    else:
        raise ValueError("candidates: use cities or hospitals.")
    old = [{**e, "existing": True, "in_region": demand.in_region(p["region"], e["latitude"], e["longitude"])}
           for e in existing]
    return old + [{**c, "existing": False, "in_region": True, "units": int(p["units_per_new_site"])} for c in new]


def _sites_to_open(p: Mapping[str, Any], cands: Sequence[Mapping[str, Any]]) -> tuple[tuple[int, ...], int]:
    """The sites fixed open and the number the model opens in all. Existing sites outside the region
    stay open (they serve the region's border) but do not count against p: the model opens p sites
    in the region plus those."""
    if not p["fix_existing"]:
        return (), int(p["p"])
    fixed = tuple(j for j, c in enumerate(cands) if c["existing"])
    inside = [str(cands[j]["code"] or cands[j]["name"]) for j in fixed if cands[j]["in_region"]]
    if len(inside) > int(p["p"]):
        raise ValueError(f"p: {len(inside)} existing sites in {p['region']} stay open ({', '.join(inside)}), "
                         f"more than p = {p['p']}; raise p or do not keep the network's sites open.")
    return fixed, int(p["p"]) + len(fixed) - len(inside)


def plan_study(params: Mapping[str, Any], progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Choose sites for a region and report access before (existing sites) and after."""
    p = {**PLAN_DEFAULTS, **params}
    say = progress or (lambda _pct: None)
    points = demand.demand_points(p["region"], indications=p["indications"], eligible=p["eligible"],
                                  min_population=int(p["min_population"]), limit=int(p["max_points"]))
    model = travel.TravelModel(circuity=float(p["circuity"]), speed_kmh=float(p["speed_kmh"]))
    lat = np.array([d.latitude for d in points])
    lon = np.array([d.longitude for d in points])
    existing = _site_rows(p["existing"], "existing")
    cands = _candidates(p, points, existing)
    fixed, to_open = _sites_to_open(p, cands)
    say(10)
    minutes = model.minutes(lat, lon, [c["latitude"] for c in cands], [c["longitude"] for c in cands])
    to_existing = minutes[:, list(range(len(existing)))].min(axis=1) if existing else None
    if float(p["equity_strength"]) > 0 or p["deprivation"]:
        far = to_existing if to_existing is not None else np.full(len(points), 2 * 120.0)
        points = demand.equity_weighted(points, [float(v) for v in far], strength=float(p["equity_strength"]),
                                        deprivation=p["deprivation"] or None,
                                        deprivation_strength=float(p["deprivation_strength"]))
    weights = np.array([d.weight for d in points])
    patients = np.array([d.patients for d in points])
    population = np.array([float(d.population) for d in points])
    capacity = np.array([c["units"] * float(p["batches_per_unit_year"]) for c in cands])
    problem = selection.Problem(weights=weights, minutes=minutes, p=to_open, cover_minutes=float(p["cover_minutes"]),
                                fixed=fixed, demand=patients, capacity=capacity)
    say(20)
    sol = selection.solve(p["model"], problem, time_limit=float(p["time_limit"]), mip_rel_gap=float(p["mip_rel_gap"]))
    say(90)
    before = selection.access(minutes, list(range(len(existing))), population, patients)
    after = selection.access(minutes, sol.chosen, population, patients,
                             assignment=sol.assignment if p["model"] == "capacitated" else None)
    nearest_after = minutes[:, sol.chosen].min(axis=1) if sol.chosen else np.full(len(points), np.nan)
    sites = []
    for k, j in enumerate(sol.chosen):
        c = cands[j]
        sites.append({**c, "load": after.load[k], "capacity": float(capacity[j]),
                      "load_before": before.load[before.sites.index(j)] if j in before.sites else None})
    say(100)
    return dict(json_safe({
        "kind": "plan", "parameters": p, "solution": sol.summary(), "before": before.as_dict(),
        "after": after.as_dict(), "sites": sites, "candidates": len(cands), "demand_points": len(points),
        "outside_fixed": [c["name"] for j, c in enumerate(cands) if j in fixed and not c["in_region"]],
        "points": [{"name": d.name, "latitude": d.latitude, "longitude": d.longitude, "population": d.population,
                    "patients": round(d.patients, 3), "minutes": round(float(t), 1)}
                   for d, t in zip(points, nearest_after, strict=True)],
        "existing": existing,
        "travel": {"circuity": model.circuity, "speed_kmh": model.speed_kmh},
    }))


TWIN_DEFAULTS: dict[str, Any] = {
    "scenario": "baseline", "sites": 30, "referrals_per_year": 10_000, "units_per_site": 2, "hub": "",
    "site": "", "units": 0, "start_day": 90.0, "days": 28.0, "weeks": 4.0, "material": "lentiviral vector",
    "replications": 4, "seed": 1, "horizon_days": 365.0, "network": None, "demand": "",
    "supplier": "", "kits_per_site": 0.0, "depot_kits": 0.0, "lead_time_days": None,
}
SCENARIOS = ("baseline", "centralized", "units", "outage", "disruption", "supply")
#: The runs of the supply scenario beside the baseline: the disruption met with the depots' stock, and
#: the same disruption with the depots emptied (same seeds).
WITH_BUFFER, WITHOUT_BUFFER = "with regional buffer", "without regional buffer"


def _with_stock(base: twin.TwinConfig, p: Mapping[str, Any]) -> twin.TwinConfig:
    """A synthetic network's stock of the disrupted material (``kits_per_site`` at each site, one depot
    of ``depot_kits`` serving them all) and the lead time asked, if any."""
    kits, depot = float(p["kits_per_site"] or 0), float(p["depot_kits"] or 0)
    if not p["network"] and (kits or depot):
        material = str(p["material"])
        base = replace(base, sites=tuple(replace(s, kits={material: kits}) for s in base.sites),
                       depots=(twin.DepotSpec("DEPOT", tuple(s.code for s in base.sites), {material: depot}),))
    if p["lead_time_days"] is not None:
        base = replace(base, lead_time_days=float(p["lead_time_days"]))
    return twin.config_from_dict(twin.config_to_dict(base))  # validated again, stock included


def _supply(base: twin.TwinConfig, p: Mapping[str, Any]) -> twin.TwinConfig:
    """The supply disruption: of a supplier (the materials only it supplies) or of a material the
    network knows (any name for a network that keeps no stock)."""
    supplier, material = str(p["supplier"] or "").strip(), str(p["material"] or "").strip()
    known = ({m for s in base.sites for m in s.kits} | {m for d in base.depots for m in d.kits}
             | {m for ms in base.suppliers.values() for m in ms} | set(base.lead_times))
    if not supplier and known and material not in known:
        raise ValueError(f"material: {material!r} is not a material of this network "
                         f"(known: {', '.join(sorted(known))}).")
    return twin.supply_disruption(base, start_day=float(p["start_day"]), weeks=float(p["weeks"]),
                                  material=material, supplier=supplier)


def twin_config(params: Mapping[str, Any]) -> tuple[twin.TwinConfig, twin.TwinConfig | None]:
    """The baseline network and, unless the scenario is the baseline, the changed one."""
    p = {**TWIN_DEFAULTS, **params}
    if p["network"]:
        base = twin.config_from_dict(p["network"])
    else:
        if int(p["sites"]) < 1:
            raise ValueError("sites: at least 1.")
        base = twin.synthetic_network(sites=int(p["sites"]), referrals_per_year=float(p["referrals_per_year"]),
                                      units_per_site=int(p["units_per_site"]), seed=int(p["seed"]))

    base = _with_stock(replace(base, horizon_days=float(p["horizon_days"])), p)
    scenario = p["scenario"]
    codes = [s.code for s in base.sites]
    site = p["site"] or codes[0]
    if scenario == "baseline":
        return base, None
    if scenario == "centralized":
        return base, twin.centralized(base, p["hub"] or codes[0])
    if scenario == "units":
        return base, twin.with_units(base, site, int(p["units"]))
    if scenario == "outage":
        return base, twin.with_outage(base, site, float(p["start_day"]), float(p["days"]))
    if scenario == "disruption":
        return base, twin.with_disruption(base, str(p["material"]), float(p["start_day"]), float(p["weeks"]))
    if scenario == "supply":
        return base, _supply(base, p)
    raise ValueError(f"scenario: {scenario!r} unknown; use one of {', '.join(SCENARIOS)}.")


def twin_study(params: Mapping[str, Any], progress: Callable[[int], None] | None = None,
               scheduler: str | None = replications.IN_PROCESS, **cluster: Any) -> dict[str, Any]:
    """Replicate the baseline and the scenario with the same seeds (common random numbers).
    ``cluster``: ``dashboard`` and ``verbose`` of :func:`replications.run_replications`."""
    p = {**TWIN_DEFAULTS, **params}
    if not p["demand"]:
        p["demand"] = (f"{float(p['referrals_per_year']):,.0f} referrals a year over a synthetic network of "
                       f"{int(p['sites'])} sites." if not p["network"] else "as given in the network.")
    n = int(p["replications"])
    if not 1 <= n <= 200:
        raise ValueError("replications: between 1 and 200.")
    base, changed = twin_config(p)
    runs = [("baseline", base)] + ([(p["scenario"], changed)] if changed is not None else [])
    if p["scenario"] == "supply" and changed is not None:
        runs = [("baseline", base), (WITH_BUFFER, changed), (WITHOUT_BUFFER, twin.without_depots(changed))]
    total = n * len(runs)
    out: dict[str, Any] = {"kind": "twin", "parameters": {k: v for k, v in p.items() if k != "network"},
                           "scenarios": []}
    for k, (name, cfg) in enumerate(runs):
        def tick(done: int, _n: int, k: int = k) -> None:
            if progress:
                progress(int(100 * (k * n + done) / total))

        results = replications.run_replications(cfg, n, int(p["seed"]), scheduler=scheduler, progress=tick,
                                                **cluster)
        summary = replications.summarize(results)
        out["scenarios"].append({"name": name, "summary": summary, "diagnosis": diagnosis.explain(summary, cfg),
                                 "sites": results[0]["sites"], "weekly_queue": results[0]["weekly_queue"],
                                 "v2v_sample": results[0]["v2v_sample"], "r2i_sample": results[0]["r2i_sample"],
                                 "replications": [{k2: v for k2, v in r.items()
                                                   if k2 not in ("sites", "weekly_queue", "v2v_sample",
                                                                 "r2i_sample")} for r in results],
                                 "units": sum(s.units for s in cfg.sites),
                                 "site_codes": [s.code for s in cfg.sites]})
    if p["scenario"] == "supply" and changed is not None:
        out["supply"] = supply_comparison(out["scenarios"], changed)
    return dict(json_safe(out))


SUPPLY_KEYS = ("delayed_supply", "lost_supply", "supply_wait_mean", "lost_progression", "treated")


def supply_comparison(scenarios: Sequence[Mapping[str, Any]], changed: twin.TwinConfig) -> dict[str, Any]:
    """Patients delayed and lost by the disruption and the added wait, with and without the regional
    buffer (means over the same seeds), and the extra losses against the baseline."""
    by_name = {s["name"]: s["summary"] for s in scenarios}
    base = by_name["baseline"]
    rows = {}
    for name in (WITH_BUFFER, WITHOUT_BUFFER):
        m = by_name[name]
        rows[name] = {**{k: m[k]["mean"] for k in SUPPLY_KEYS},
                      "extra_lost": (m["lost_progression"]["mean"] or 0) - (base["lost_progression"]["mean"] or 0),
                      "kits_depot": m["kits_depot"]["mean"]}
    return {"materials": sorted({d.material for d in changed.disruptions}), "rows": rows,
            "depots": [{"depot": d.code, "serves": list(d.serves), "kits": dict(d.kits)} for d in changed.depots]}
