"""Coastlines and country borders under the planning map, offline: Natural Earth's Admin 0 countries
at 1:50m (version 4.1.0, public domain), shipped in ``data/natural_earth_lines.geojson`` as two
MultiLineStrings (each shared border once), simplified to 0.05° and rounded to 0.01° by
``tools/vendor_natural_earth.py`` from the TopoJSON of the npm package ``world-atlas`` 2.0.2 (ISC).
No tile server, no network access. No Django import (a library module)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

DATA = Path(__file__).with_name("data") / "natural_earth_lines.geojson"
SOURCE = "Natural Earth 1:50m (public domain)"

Line = tuple[tuple[float, float], ...]


class Box(NamedTuple):
    """A longitude/latitude window: what the map shows."""

    west: float
    south: float
    east: float
    north: float

    def holds(self, lon: float, lat: float) -> bool:
        return self.west <= lon <= self.east and self.south <= lat <= self.north


@lru_cache(maxsize=1)
def lines() -> dict[str, tuple[Line, ...]]:
    """``{"coastline": (...), "border": (...)}``, each line a tuple of (longitude, latitude)."""
    data = json.loads(DATA.read_text(encoding="utf-8"))
    out: dict[str, tuple[Line, ...]] = {}
    for feature in data["features"]:
        out[feature["properties"]["kind"]] = tuple(tuple((float(x), float(y)) for x, y in line)
                                                   for line in feature["geometry"]["coordinates"])
    return out


def clip(line: Line, box: Box) -> list[Line]:
    """The runs of ``line`` inside ``box``, each with its neighbour outside kept so that it reaches
    the edge (the drawing's clip path cuts it there)."""
    runs: list[Line] = []
    start = None
    for i, (lon, lat) in enumerate(line):
        inside = box.holds(lon, lat)
        if inside and start is None:
            start = max(0, i - 1)
        elif not inside and start is not None:
            runs.append(line[start:i + 1])
            start = None
    if start is not None:
        runs.append(line[start:])
    return [r for r in runs if len(r) >= 2]


def path_d(kind: str, box: Box, xy: Callable[[float, float], tuple[float, float]]) -> str:
    """SVG path data of the ``kind`` lines (``coastline`` or ``border``) seen in ``box``, projected
    by ``xy(longitude, latitude)`` to pixels."""
    segments: list[str] = []
    for line in lines()[kind]:
        for run in clip(line, box):
            segments.append(" ".join(f"{'L' if i else 'M'}{x:.1f} {y:.1f}"
                                     for i, (x, y) in enumerate(xy(lon, lat) for lon, lat in run)))
    return " ".join(segments)


def window(lons: Sequence[float], lats: Sequence[float], pad: float = 0.5) -> Box:
    """The box around the given points, widened by ``pad`` degrees."""
    return Box(min(lons) - pad, min(lats) - pad, max(lons) + pad, max(lats) + pad)
