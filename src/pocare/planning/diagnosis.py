"""Why referred patients are not treated, from a twin scenario's summary: where the referred go (not
eligible, progressed while waiting for a manufacturing slot, progressed on the rest of the pathway,
manufacturing failure) and which constraint binds — capacity (units against eligible referrals),
the time on the pathway (travel included) or manufacturing failure. A share treated below
:data:`LOW_SHARE` is flagged, so that a report never shows "3.9 % treated" without a word.
No Django import (a library module)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pocare.planning import twin

#: Below this share of referred patients treated the report warns. A US community network treated
#: 59 % of referred patients (Blood Adv 2025;9:429, DOMAIN.md); half is well below what a network
#: with enough capacity reaches in the twin (about 70 %: 85 % eligible, progression on the way).
LOW_SHARE = 0.5

BINDING = {
    "lost_waiting": "manufacturing capacity",
    "lost_pathway": "time on the pathway (eligibility, apheresis, travel, manufacture, QC, infusion)",
    "lost_failure": "manufacturing failure",
}


def _mean(summary: Mapping[str, Any], key: str) -> float:
    value = (summary.get(key) or {}).get("mean")
    return float(value) if value is not None else 0.0


def capacity_per_year(config: twin.TwinConfig, transport_hours: float) -> tuple[float, float]:
    """Patients a year the units can take, and the days one patient holds a unit (from the booked
    slot: apheresis, transport to the site, manufacture — the twin holds the unit from apheresis on)."""
    held = config.manufacture.average + transport_hours / 24.0  # the hand-over is in transport_hours
    if config.hold_unit_from_booking:
        held += config.apheresis.average
    units = sum(s.units for s in config.sites)
    return (units * 365.0 / held if held > 0 else float("inf")), held


def explain(summary: Mapping[str, Any], config: twin.TwinConfig) -> dict[str, Any]:
    """The shares of referred patients by outcome, the binding constraint and a sentence to show."""
    referred = _mean(summary, "referred")
    if referred <= 0:
        return {"low": False, "shares": {}, "binding": None, "text": "No patient was referred."}
    shares = {"treated": _mean(summary, "treated") / referred, "ineligible": _mean(summary, "ineligible") / referred,
              "lost_waiting": _mean(summary, "lost_waiting") / referred,
              "lost_pathway": (_mean(summary, "lost_progression") - _mean(summary, "lost_waiting")) / referred,
              "lost_failure": _mean(summary, "lost_failure") / referred}
    shares["unfinished"] = max(0.0, 1.0 - sum(shares.values()))
    binding = max(BINDING, key=lambda k: shares[k])
    travel = _mean(summary, "transport_hours_mean")
    capacity, held = capacity_per_year(config, travel)
    years = (config.horizon_days - config.warmup_days) / 365.0
    eligible = referred / years * config.eligible_share
    units = sum(s.units for s in config.sites)
    facts = (f"{units} units can take about {capacity:,.0f} patients a year (each holds a unit about {held:.1f} "
             f"days: apheresis, transport, manufacture) for {eligible:,.0f} eligible referrals a year; unit "
             f"utilization {_mean(summary, 'utilization'):.2f}, mean wait for a slot "
             f"{_mean(summary, 'slot_wait_mean'):.1f} d; travel {travel:.1f} h one way per patient (hand-over "
             "included).")
    where = (f"Of the referred: treated {100 * shares['treated']:.1f} %, not eligible {100 * shares['ineligible']:.1f} "
             f"%, progressed while waiting for a slot {100 * shares['lost_waiting']:.1f} %, progressed on the rest "
             f"of the pathway {100 * shares['lost_pathway']:.1f} %, manufacturing failure "
             f"{100 * shares['lost_failure']:.1f} %, still on the way when the run ended "
             f"{100 * shares['unfinished']:.1f} %.")
    low = shares["treated"] < LOW_SHARE
    head = (f"Only {100 * shares['treated']:.1f} % of referred patients are treated: {BINDING[binding]} binds. "
            if low else f"What limits treatment most: {BINDING[binding]}. ")
    return {"low": low, "shares": shares, "binding": binding, "capacity_per_year": capacity,
            "eligible_per_year": eligible, "text": head + where + " " + facts}
