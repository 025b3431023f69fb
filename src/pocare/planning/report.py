"""HTML reports of a site-selection study and of a twin study: tables, the SVG map and plots. The
same body is shown on the run page and written by ``pocare plan`` / ``pocare twin`` as a standalone
file (inline CSS, no external asset). No Django import (a library module)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

from pocare.planning import plots

CSS = ("body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;"
       "margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
       "td:first-child,th:first-child{text-align:left}.note{color:#555;font-size:12px}"
       ".low-share{border-left:4px solid #c48a00;background:#fff8e1;padding:.4em .8em}")


def _f(v: Any, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return escape(f"{v:,}" if isinstance(v, int) else str(v))


def _table(head: list[str], rows: list[list[Any]]) -> str:
    return ("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{_f(c)}</td>" for c in r) + "</tr>" for r in rows) + "</table>")


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "—"


def _existing(site: Mapping[str, Any]) -> str:
    if not site["existing"]:
        return "new"
    return "yes" if site.get("in_region", True) else "yes, outside the region"


def plan_body(r: Mapping[str, Any]) -> str:
    s, b, a, p = r["solution"], r["before"], r["after"], r["parameters"]
    out = [f"<h2>Site selection: {escape(s['model'].upper())}, {escape(str(p['region']))}</h2>",
           f"<p>{r['demand_points']:,} demand points (GeoNames cities ≥ {p['min_population']:,} inhabitants), "
           f"{r['candidates']:,} candidates ({escape(p['candidates'])}), p = {p['p']}, coverage standard "
           f"{p['cover_minutes']:.0f} min. Travel = great-circle km × {r['travel']['circuity']} ÷ "
           f"{r['travel']['speed_kmh']} km/h.</p>",
           _table(["solver", "status", "objective", "gap", "bound", "solve s", "build s"],
                  [[ "HiGHS", s["status"], s["objective"], f"{100 * s['gap']:.4f} %", s["bound"], s["seconds"],
                     s["build_seconds"]]])]
    if r.get("outside_fixed"):
        out.append(f"<p>Existing sites outside {escape(str(p['region']))} stay open and serve the region's "
                   f"border, but do not count against p: {escape(', '.join(r['outside_fixed']))}.</p>")
    rows = []
    for label, key in (("population", "population"), ("patients / yr", "patients")):
        for name, acc in (("before", b), ("after", a)):
            total = acc[key]
            rows.append([f"{label} — {name}", total, acc[f"{key}_1h"], _pct(acc[f"{key}_1h"], total),
                         acc[f"{key}_2h"], _pct(acc[f"{key}_2h"], total)])
    out.append("<h3>Access before (existing sites) and after</h3>")
    out.append(_table(["", "total", "≤ 1 h", "share", "≤ 2 h", "share"], rows))
    out.append(_table(["", "sites", "mean travel min", "p90 travel min"],
                      [["before", len(b["sites"]), b["mean_minutes"], b["p90_minutes"]],
                       ["after", len(a["sites"]), a["mean_minutes"], a["p90_minutes"]]]))
    out.append("<h3>Sites and expected load (patients / yr, to the nearest site)</h3>")
    out.append(_table(["site", "existing", "latitude", "longitude", "units", "capacity", "load before", "load after"],
                      [[x["name"], _existing(x), x["latitude"], x["longitude"], x["units"],
                        x["capacity"], x["load_before"], x["load"]] for x in r["sites"]]))
    out.append(plots.network_map(r["points"], r["sites"], r["existing"],
                                 title=f"{p['region']}: demand and chosen sites"))
    out.append(plots.load_bars([{"name": x["name"], "load": x["load"], "capacity": x["capacity"]} for x in r["sites"]],
                               title="Expected load against capacity"))
    out.append("<p class=note>Capacity = units × batches per unit per year (default 30: 2–3 batches per device per "
               "month, DOMAIN.md, estimate). Incidence per indication and share eligible as in "
               "pocare.planning.demand (DOMAIN.md disease burden).</p>")
    return "".join(out)


KPI_LABELS = (("share_treated", "share treated", 3), ("treated", "treated", 1),
              ("lost_progression", "lost to progression", 1),
              ("lost_waiting", "of which waiting for a slot", 1),
              ("lost_supply", "of which waiting for a disrupted material", 1),
              ("delayed_supply", "delayed by a disrupted material", 1),
              ("supply_wait_mean", "added wait for material, mean (d)", 1),
              ("lost_failure", "lost to manufacturing failure", 1),
              ("v2v_median", "vein-to-vein median (d)", 1), ("v2v_p90", "vein-to-vein p90 (d)", 1),
              ("r2i_median", "referral-to-infusion median (d)", 1), ("r2i_p90", "referral-to-infusion p90 (d)", 1),
              ("slot_wait_mean", "slot wait mean (d)", 2), ("utilization", "unit utilization", 3),
              ("queue_mean", "mean queue per site", 2), ("cost_per_treated", "cost per patient treated (€)", 0))


def twin_body(r: Mapping[str, Any]) -> str:
    p = r["parameters"]
    scen = r["scenarios"]
    out = [f"<h2>Digital twin: {escape(str(p['scenario']))}</h2>",
           f"<p>{p['replications']} replication(s) per scenario, seed {p['seed']}, horizon {p['horizon_days']:.0f} "
           "days; mean ± 95 % half-width over replications (common random numbers).</p>"]
    if p.get("demand"):
        out.append(f"<p>Demand: {escape(str(p['demand']))}</p>")
    for s in scen:
        why = s.get("diagnosis")
        if why:
            css = " class=low-share" if why["low"] else ""
            out.append(f"<p{css}><b>{escape(s['name'])}</b>: {escape(why['text'])}</p>")
    rows = []
    for key, label, digits in KPI_LABELS:
        row: list[Any] = [label]
        for s in scen:
            m = s["summary"][key]
            if m["mean"] is None:
                row.append("—")
            else:
                hw = f" ± {m['half_width']:,.{digits}f}" if m["half_width"] is not None else ""
                row.append(f"{m['mean']:,.{digits}f}{hw}")
        rows.append(row)
    out.append(_table(["KPI", *[s["name"] for s in scen]], rows))
    if r.get("supply"):
        out.append(supply_body(r["supply"], p))
    for s in scen:
        out.append(f"<h3>{escape(s['name'])}: sites (replication 1)</h3>")
        out.append(_table(["site", "units", "batches", "utilization", "mean queue", "max queue"],
                          [[x["site"], x["units"], x["batches"], round(x["utilization"], 3), round(x["queue_mean"], 2),
                            x["queue_max"]] for x in s["sites"] if x["units"] or x["batches"]]))
        out.append(plots.histogram(s["v2v_sample"], title=f"{s['name']}: vein-to-vein (replication 1)"))
        out.append(plots.histogram(s["r2i_sample"], title=f"{s['name']}: referral-to-infusion (replication 1)"))
    out.append(plots.lines({s["name"]: [float(sum(w)) for w in s["weekly_queue"]] for s in scen},
                           title="Patients waiting for a slot, whole network (replication 1)"))
    out.append("<p class=note>Process times, failure and progression rates and costs: pocare.planning.twin "
               "(sources in DOMAIN.md).</p>")
    return "".join(out)


def supply_body(supply: Mapping[str, Any], p: Mapping[str, Any]) -> str:
    """The supply disruption with and without the regional buffer, side by side."""
    what = (f"supplier {p['supplier']}" if p.get("supplier") else "material") + ": " + ", ".join(supply["materials"])
    names = list(supply["rows"])
    labels = (("delayed_supply", "patients delayed"), ("lost_supply", "patients lost waiting for material"),
              ("extra_lost", "patients lost beyond the baseline"), ("supply_wait_mean", "added wait (d, mean)"),
              ("kits_depot", "kits drawn from depots"), ("treated", "treated"))
    rows = [[label, *[supply["rows"][n][key] for n in names]] for key, label in labels]
    depots = "; ".join(f"{d['depot']} serving {', '.join(d['serves'])}: "
                       + (", ".join(f"{m} {k:,.0f}" for m, k in sorted(d["kits"].items())) or "no stock")
                       for d in supply["depots"]) or "none"
    return (f"<h3>Supply disruption ({escape(what)}), {float(p['weeks']):.0f} weeks from day "
            f"{float(p['start_day']):.0f}</h3>" + _table(["", *names], rows)
            + f"<p class=note>Depots (kits): {escape(depots)}. Without the regional buffer the depots are "
              "emptied; the same seeds are run. A batch takes a kit of the site first, then of its depot, "
              "else waits for the delivery after the disruption (its end plus the lead time).</p>")


def body(result: Mapping[str, Any]) -> str:
    return plan_body(result) if result["kind"] == "plan" else twin_body(result)


def document(result: Mapping[str, Any], *, title: str, generated: dt.datetime | None = None) -> str:
    when = (generated or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1><p class=note>Generated {when} by "
            f"POCare planning.</p>{body(result)}</body></html>")


def check_writable(path: str, option: str) -> None:
    """Refuse, before any work, an output file that cannot be written: its folder missing or not a
    folder, the path a folder, or no permission. Tried by opening it for appending (which changes
    nothing); a file that did not exist is removed again."""
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{option}: {path} is a folder; name a file.")
    existed = target.exists()
    try:
        with target.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise ValueError(f"{option}: cannot write {path} ({exc.strerror or exc}).") from exc
    if not existed:
        target.unlink()
