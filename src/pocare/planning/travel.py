"""Travel time between demand points and sites: great-circle distance × a road circuity factor ÷ a
speed, or a real travel-time matrix loaded from CSV. No Django import (a library module)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)
#: Road distance ÷ great-circle distance. 1.3 is a planning assumption *(estimate)*: published
#: national road circuity factors mostly lie between 1.2 and 1.4. Configurable per run.
DEFAULT_CIRCUITY = 1.3
#: Mean door-to-door road speed, km/h *(estimate)*, mixing motorway and urban driving. Configurable.
DEFAULT_SPEED_KMH = 60.0

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TravelModel:
    """How travel minutes are derived from coordinates: minutes = km × circuity ÷ speed × 60."""

    circuity: float = DEFAULT_CIRCUITY
    speed_kmh: float = DEFAULT_SPEED_KMH

    def __post_init__(self) -> None:
        if not 1.0 <= self.circuity <= 3.0:
            raise ValueError("circuity: use a factor between 1.0 and 3.0.")
        if not 5.0 <= self.speed_kmh <= 200.0:
            raise ValueError("speed_kmh: use a speed between 5 and 200 km/h.")

    def minutes(self, lat1: Sequence[float] | FloatArray, lon1: Sequence[float] | FloatArray,
                lat2: Sequence[float] | FloatArray, lon2: Sequence[float] | FloatArray) -> FloatArray:
        return great_circle_km(lat1, lon1, lat2, lon2) * self.circuity / self.speed_kmh * 60.0


def great_circle_km(lat1: Sequence[float] | FloatArray, lon1: Sequence[float] | FloatArray,
                    lat2: Sequence[float] | FloatArray, lon2: Sequence[float] | FloatArray) -> FloatArray:
    """Haversine distance matrix (len(lat1) × len(lat2)) in km."""
    p1 = np.radians(np.asarray(lat1, dtype=float))[:, None]
    p2 = np.radians(np.asarray(lat2, dtype=float))[None, :]
    dl = np.radians(np.asarray(lon2, dtype=float))[None, :] - np.radians(np.asarray(lon1, dtype=float))[:, None]
    h = np.sin((p2 - p1) / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2.0) ** 2
    out: FloatArray = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    return out


def matrix_from_csv(path: str | Path, origins: Sequence[str], destinations: Sequence[str]) -> FloatArray:
    """A measured travel-time matrix (e.g. from a routing engine) in long form: a CSV with columns
    ``origin,destination,minutes``. Every origin × destination pair must be present."""
    want_o = {o: i for i, o in enumerate(origins)}
    want_d = {d: j for j, d in enumerate(destinations)}
    out = np.full((len(origins), len(destinations)), np.nan)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"origin", "destination", "minutes"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"travel matrix: columns {sorted(missing)} missing (need origin,destination,minutes).")
        for row in reader:
            i, j = want_o.get(row["origin"]), want_d.get(row["destination"])
            if i is not None and j is not None:
                minutes = float(row["minutes"])
                if minutes < 0 or not np.isfinite(minutes):
                    raise ValueError(f"travel matrix: minutes must be ≥ 0 ({row['origin']}→{row['destination']}).")
                out[i, j] = minutes
    if np.isnan(out).any():
        i, j = (int(v[0]) for v in np.nonzero(np.isnan(out)))
        raise ValueError(f"travel matrix: no time for {origins[i]} → {destinations[j]}.")
    return out
