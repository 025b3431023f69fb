"""The device log of a history batch: hourly readings of the monitored parameters over the
culture, now and then an excursion beyond the alarm limits, and how the operator acknowledged it."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from pocare.demo.history.plan import ALARM_RATE, BatchPlan

ACKNOWLEDGEMENTS = {
    "culture-temperature": "Chamber opened for the scheduled feed; temperature recovered within the hour. "
                           "No impact on the culture expected.",
    "co2": "CO2 supply bottle changed over; concentration back within limits.",
    "ph": "Medium exhausted ahead of the programmed feed; feed brought forward, pH recovered.",
    "dissolved-oxygen": "High cell density before harvest; agitation raised per programme, oxygen recovered.",
}


def device_series(p: BatchPlan, monitoring: list[dict[str, Any]]) -> list[tuple[str, dt.datetime, float, bool]]:
    """Hourly values of the monitored parameters from activation to harvest (or the abort), with
    now and then an excursion beyond the alarm limits (estimate; CliniMACS Prodigy process log)."""
    rng = random.Random(f"{p.rng.random()}:device")  # noqa: S311 (demo data)
    by_id = {s.step["id"]: s for s in p.steps}
    if "activation" not in by_id:
        return []
    begin = by_id["activation"].started_at
    end = by_id["harvest"].started_at if "harvest" in by_id else p.steps[-1].done_at
    hours = max(1, int((end - begin).total_seconds() // 3600))
    excursion = None
    if rng.random() < ALARM_RATE and monitoring:
        pid = rng.choice([m["id"] for m in monitoring])
        at_hour = rng.randint(max(1, hours // 3), max(1, hours - 3)) if pid != "dissolved-oxygen" else hours - 3
        excursion = (pid, at_hour, rng.randint(1, 3))
    rows = []
    for m in monitoring:
        pid, lo, hi = m["id"], m.get("alarm_min"), m.get("alarm_max")
        level = 0.0
        for k in range(hours + 1):
            at = begin + dt.timedelta(hours=k)
            frac = k / hours
            level = 0.8 * level + rng.gauss(0, 1)  # slowly wandering noise
            if pid == "culture-temperature":
                value = 37.0 + 0.05 * level
            elif pid == "co2":
                value = 5.0 + 0.03 * level
            elif pid == "ph":
                value = 7.35 - 0.3 * frac + 0.01 * level
            elif pid == "dissolved-oxygen":
                value = 92 - 55 * frac ** 1.5 + 1.5 * level
            else:  # a parameter this module does not know: the middle of its limits
                middle = ((lo if lo is not None else hi or 0) + (hi if hi is not None else lo or 0)) / 2
                value = middle + 0.01 * abs(middle) * level
            if excursion and excursion[0] == pid and excursion[1] <= k < excursion[1] + excursion[2]:
                value = {"culture-temperature": 35.6 + 0.3 * rng.random(), "co2": 4.2 + 0.2 * rng.random(),
                         "ph": 6.72 + 0.06 * rng.random(),
                         "dissolved-oxygen": 15 + 4 * rng.random()}.get(pid, (lo or 0) - 1)
            if hi is not None and pid == "dissolved-oxygen":
                value = min(value, hi)
            value = round(value, 2)
            out = (lo is not None and value < lo) or (hi is not None and value > hi)
            rows.append((pid, at, value, out))
    return rows
