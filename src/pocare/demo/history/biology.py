"""The biology of a history batch: its latent state (transduction, expansion, purity, viability;
a failure where one is drawn) and the values read from it at each step and by QC, drawn around
the master file's targets and the published distributions (DOMAIN.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from pocare.custody.models import HandoffKind, HandoffOutcome
from pocare.demo.history.plan import CAR_MEAN, CAR_SD, COHORT_DOSE, STERILITY_POSITIVE_RATE, BatchPlan, clip
from pocare.manufacturing.models import MaterialLot
from pocare.masterfile import schema
from pocare.network.models import Site

#: The lot of a material in use at a site at a moment.
LotAt = Callable[[Site, str, dt.datetime], MaterialLot]


def latent(p: BatchPlan) -> dict[str, Any]:
    """The batch's underlying biology, from which its values are read."""
    rng = p.rng
    car = clip(rng.gauss(p.car_mean, CAR_SD), 6, 65)
    fold = clip(rng.lognormvariate(3.4, 0.25), 8, 80)  # ~30-fold to day 8–12 (Zhu et al. 2018)
    latent: dict[str, Any] = {
        "car": car, "fold": fold,
        "purity": clip(rng.gauss(98, 4), 80.5, 99.9),  # 98 ± 4 % (Zhu et al. 2018)
        "recovery": clip(rng.gauss(55, 6), 32, 80),  # 55 ± 6 % (Zhu et al. 2018)
        "viability5": clip(rng.gauss(93, 3), 75, 99.5),
        "viability_harvest": clip(rng.gauss(97.2, 1.2), 88, 99.8),
        "fails_at": None, "end_reason": "",
    }
    if p.failure == "low-purity":
        latent["purity"] = rng.uniform(62, 78)
        latent["fails_at"] = "cd4-cd8-selection"
        latent["end_reason"] = (f"Manufacturing failure: low T-cell purity after CD4/CD8 selection "
                                f"({latent['purity']:.1f} %, master file ≥ 80 %).")
    elif p.failure == "low-viability":
        latent["viability5"] = rng.uniform(48, 68)
        latent["fails_at"] = "ipc-day5"
        latent["end_reason"] = (f"Manufacturing failure: low viability at the day-5 in-process control "
                                f"({latent['viability5']:.1f} %, master file ≥ 70 %).")
    elif p.failure == "poor-growth":
        latent["fold"] = rng.uniform(2.0, 4.6)
        latent["fails_at"] = "expansion-harvest-decision"
        latent["end_reason"] = (f"Manufacturing failure: poor growth ({latent['fold']:.1f}-fold by day 9, "
                                f"master file ≥ 5); the dose cannot be reached.")
    return latent


def step_values(p: BatchPlan, step: dict[str, Any], lat: dict[str, Any], weight: float, lot: LotAt) -> dict[str, Any]:
    """The values recorded at ``step``, drawn around the master file's targets and ranges; ``lot``
    finds the lot of a material in use at the site at a moment."""
    rng, sid = p.rng, step["id"]
    at = p.steps[-1].performed_at if p.steps else p.started_at
    assert at is not None
    if sid == "receipt-identity":
        receipt = next(h.at for h in p.handoffs  # the completed receipt, not a blocked attempt before it
                       if h.kind == HandoffKind.RECEIPT_AT_SITE and h.outcome == HandoffOutcome.COMPLETED)
        temperature = rng.uniform(8.2, 9.1) if rng.random() < 0.01 else clip(rng.gauss(4.6, 0.9), 2.2, 7.8)
        p.shipper_celsius = round(temperature, 1)  # the logger's last reading before the receipt says it
        return {"din-matches": True, "shipper-temperature": p.shipper_celsius,
                "transit-time": round((receipt - p.collection["ended"]).total_seconds() / 3600, 1)}
    if sid == "apheresis-count":
        tnc = clip(rng.lognormvariate(8.5, 0.35), 1800, 15000)  # ~5 × 10^9 TNC (estimate)
        lat["tnc"], lat["cd3"] = tnc, clip(rng.gauss(45, 15), 6, 85)
        return {"tnc": round(tnc), "viability": round(clip(rng.gauss(96, 2.2), 84, 99.8), 1),
                "cd3-fraction": round(lat["cd3"], 1)}
    if sid == "prodigy-setup":
        return {"program": "TCT", "tubing-set-lot": lot(p.site, "TS520", at).lot_number,
                "self-test-passed": True}
    if sid == "cd4-cd8-selection":
        selected = lat["tnc"] * lat["cd3"] / 100 * lat["recovery"] / 100 * lat["purity"] / 100
        lat["selected"] = selected
        return {"purity": round(lat["purity"], 1), "recovery": round(lat["recovery"], 1),
                "selected-cells": round(selected)}
    if sid == "activation":
        seeded = min(100.0, lat["selected"]) * rng.uniform(0.96, 1.0)
        lat["seeded"] = seeded
        temperature = 36.4 if rng.random() < 0.005 else clip(rng.gauss(37.0, 0.1), 36.7, 37.3)
        return {"cells-seeded": round(seeded, 1), "culture-temperature": round(temperature, 1)}
    if sid == "transduction":
        moi = round(rng.uniform(4.5, 4.8) if rng.random() < 0.005 else clip(rng.gauss(5.2, 0.2), 5, 6), 1)
        titre = rng.uniform(80, 150)  # 10^6 TU/mL of the vector lot (estimate)
        return {"vector-lot": lot(p.site, "LV-CAR19", at).lot_number, "moi": moi,
                "vector-volume": round(moi * lat["seeded"] / titre, 2)}
    if sid == "culture-wash":
        return {"washes": 1 if rng.random() < 0.003 else 2}
    if sid == "ipc-day5":
        # Day-5 CAR+ tracks the final product's (≥ 5 % on day 5, Front Immunol 2024;15:1328368).
        growth5 = lat["fold"] ** 0.5 * rng.uniform(0.8, 1.1)
        return {"viable-cells": round(lat["seeded"] * growth5 * lat["viability5"] / 100),
                "viability": round(lat["viability5"], 1),
                "car-positive": round(clip(lat["car"] + rng.gauss(0, 3), 3, 70), 1)}
    if sid == "expansion-harvest-decision":
        return {"fold-expansion": round(lat["fold"], 1)}
    if sid == "ipc-sterility-sampling":
        return {"samples-taken": True}
    if sid == "harvest":
        lat["harvested"] = lat["seeded"] * lat["fold"]
        # The culture day is derived from the step times in a live batch: the plan harvests on it.
        return {"harvest-day": p.harvest_day, "total-viable-cells": round(lat["harvested"]),
                "viability": round(lat["viability_harvest"], 1)}
    if sid == "formulation":
        available = lat["harvested"] * lat["car"] / 100 / weight  # 10^6 CAR+ cells per kg
        dose = min(available, COHORT_DOSE * rng.gauss(1.0, 0.05))
        lat["dose"] = dose
        return {"dose": round(dose, 2), "fraction-bags": 3,
                "fill-volume": round(clip(rng.gauss(70, 8), 30, 100), 1)}
    if sid == "release-sampling":
        return {"sample-volume": round(clip(rng.gauss(5, 0.8), 2.5, 9), 1)}
    if sid == "disposition-choice":
        return {"disposition": "fresh" if p.fresh else "cryopreserved",
                "storage-temperature": round(clip(rng.gauss(4.3, 0.6), 2.5, 7.5), 1)}
    if sid == "cryopreservation":
        end = rng.uniform(-89.5, -88) if rng.random() < 0.005 else clip(rng.gauss(-95, 2), -100, -90.5)
        return {"end-temperature": round(end, 1),
                "storage-position": f"Dewar {rng.randint(1, 3)} / rack {'ABCDEF'[rng.randint(0, 5)]} / "
                                    f"box {rng.randint(1, 12)} / position {rng.randint(1, 25)}"}
    return generic_values(p, step)


def generic_values(p: BatchPlan, step: dict[str, Any]) -> dict[str, Any]:
    """A step this module does not know (a later master file): the target, or the middle of the range."""
    sid = step["id"]
    values: dict[str, Any] = {}
    for param in step.get("parameters", []):
        lo, hi, target = param.get("min"), param.get("max"), param.get("target")
        kind = schema.value_type(param)  # a derived parameter: its source's type
        if target is not None:
            values[param["id"]] = target
        elif kind == "choice":
            values[param["id"]] = (param.get("choices") or [""])[0]
        elif kind in ("number", "integer"):
            middle = ((lo if lo is not None else hi or 0) + (hi if hi is not None else lo or 0)) / 2
            values[param["id"]] = int(middle) if kind == "integer" else middle
        elif kind == "boolean":
            values[param["id"]] = True
        else:
            values[param["id"]] = f"{sid} {p.rng.randint(100, 999)}"
    return values


def qc_draws(p: BatchPlan, lat: dict[str, Any], sampled: dt.datetime,
             culture_sample: dt.datetime) -> dict[str, tuple[float | None, str, dt.datetime]]:
    """The QC result of each attribute the history knows: (number, text, when tested), read at its
    method's typical turnaround from the release sample (mycoplasma: the culture sample)."""
    rng = p.rng
    h = dt.timedelta(hours=1)
    car = lat["car"]
    return {
        # ARI-0001 validation lots (Castella 2019, Table 2): viability 97.9/98.1/98.0 %,
        # CD3+ 97.9/98.6/98.6 %, CAR+ 26.0/41.9/39.7 %, VCN 1.45/2.32/2.51; flow panel 2–4 h.
        "viability": (round(clip(lat["viability_harvest"] + rng.gauss(0.7, 0.5), 85, 99.9), 1), "",
                      sampled + h * rng.uniform(2, 4)),
        "cd3": (round(clip(rng.gauss(98.3, 0.8), 90, 99.9), 1), "", sampled + h * rng.uniform(2, 4)),
        "car-positive": (round(clip(car + rng.gauss(0, 1.5), 3, 70), 1), "", sampled + h * rng.uniform(2, 4)),
        "dose": (round(lat["dose"], 2), "", sampled + h * rng.uniform(4, 5)),
        # VCN by ddPCR 1–2 days, higher with more transduction.
        "vcn": (round(clip(2.0 + 0.03 * (car - CAR_MEAN) + rng.gauss(0, 0.35), 0.6, 6), 2), "",
                sampled + h * rng.uniform(24, 48)),
        # Kinetic LAL ~1 h; low, well below the 0.5 EU/mL limit (estimate).
        "endotoxin": (round(clip(rng.lognormvariate(-3.0, 0.6), 0.005, 2), 3), "",
                      sampled + h * rng.uniform(1, 2)),
        # Automated culture ~7 days (DOMAIN.md QC turnaround).
        "sterility": (None, ("growth (Staphylococcus epidermidis)" if rng.random() < STERILITY_POSITIVE_RATE
                             else "no growth"), sampled + dt.timedelta(days=7, hours=rng.uniform(0, 6))),
        # Mycoplasma qPCR 4–24 h on the culture sample taken before harvest.
        "mycoplasma": (None, "not detected", culture_sample + h * rng.uniform(4, 24)),
        "rcl": (None, "not detected", sampled + h * rng.uniform(48, 120)),
        # NALM6 surviving fraction at E:T 1:1 (< 70 %), lower with more CAR+ cells (estimate).
        "potency": (round(clip(35 - 0.8 * (car - CAR_MEAN) + rng.gauss(0, 10), 4, 98), 1), "",
                    sampled + h * rng.uniform(24, 72)),
    }
