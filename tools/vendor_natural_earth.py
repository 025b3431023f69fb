"""Write the planning map's coastlines and borders (src/pocare/planning/data/natural_earth_lines.geojson)
from Natural Earth's Admin 0 countries as TopoJSON, as the npm package ``world-atlas`` carries them
(Natural Earth 4.1.0; the data are public domain, the package ISC). Run once when the map data change:

    npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
    python tools/vendor_natural_earth.py package/countries-50m.json

Each TopoJSON arc belongs to one country (a coastline) or to two (a border), so the arcs are split
into two MultiLineStrings, each drawn once. Lines are simplified (Douglas–Peucker, ``--tolerance``
degrees) and rounded to two decimals, which keeps the file small and is finer than a pixel on a
country-sized map of 720 px."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "src/pocare/planning/data/natural_earth_lines.geojson"


def decode_arcs(topology: dict[str, Any]) -> list[list[tuple[float, float]]]:
    """Delta-encoded, quantized arcs to longitude/latitude."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def arc_uses(geometries: list[dict[str, Any]]) -> Counter[int]:
    """How many countries each arc bounds (a negative index is the arc reversed: ~i)."""
    uses: Counter[int] = Counter()

    def walk(node: Any) -> None:
        if isinstance(node, int):
            uses[node if node >= 0 else ~node] += 1
        else:
            for child in node:
                walk(child)

    for geometry in geometries:
        walk(geometry.get("arcs", []))
    return uses


def simplify(points: list[tuple[float, float]], tolerance: float) -> list[tuple[float, float]]:
    """Douglas–Peucker on the plane of degrees (iterative, keeps both ends)."""
    if len(points) < 3:
        return points
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        a, b = stack.pop()
        (x1, y1), (x2, y2) = points[a], points[b]
        dx, dy = x2 - x1, y2 - y1
        norm = (dx * dx + dy * dy) ** 0.5
        best, far = -1.0, -1
        for i in range(a + 1, b):
            px, py = points[i]
            d = abs(dy * (px - x1) - dx * (py - y1)) / norm if norm else ((px - x1) ** 2 + (py - y1) ** 2) ** 0.5
            if d > best:
                best, far = d, i
        if best > tolerance:
            keep[far] = True
            stack += [(a, far), (far, b)]
    return [p for p, k in zip(points, keep, strict=True) if k]


def lines(topology: dict[str, Any], tolerance: float) -> dict[str, list[list[list[float]]]]:
    arcs = decode_arcs(topology)
    uses = arc_uses(topology["objects"]["countries"]["geometries"])
    out: dict[str, list[list[list[float]]]] = {"coastline": [], "border": []}
    for i, arc in enumerate(arcs):
        kind = "border" if uses[i] >= 2 else "coastline"
        rounded: list[list[float]] = []
        for lon, lat in simplify(arc, tolerance):
            point = [round(lon, 2), round(lat, 2)]
            if not rounded or rounded[-1] != point:
                rounded.append(point)
        if len(rounded) >= 2:
            out[kind].append(rounded)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topojson", help="world-atlas countries-50m.json or countries-110m.json")
    parser.add_argument("--tolerance", type=float, default=0.03, help="degrees (default 0.03)")
    parser.add_argument("--out", default=str(OUT))
    o = parser.parse_args()
    source = Path(o.topojson)
    split = lines(json.loads(source.read_text(encoding="utf-8")), o.tolerance)
    scale = "1:50m" if "50m" in source.name else "1:110m" if "110m" in source.name else source.name
    collection = {"type": "FeatureCollection",
                  "source": f"Natural Earth 4.1.0 Admin 0 countries {scale} (public domain), via the npm package "
                            f"world-atlas 2.0.2 (ISC); simplified {o.tolerance}° and rounded to 0.01° by "
                            "tools/vendor_natural_earth.py",
                  "features": [{"type": "Feature", "properties": {"kind": kind},
                                "geometry": {"type": "MultiLineString", "coordinates": split[kind]}}
                               for kind in ("coastline", "border")]}
    Path(o.out).parent.mkdir(parents=True, exist_ok=True)
    Path(o.out).write_text(json.dumps(collection, separators=(",", ":")), encoding="utf-8")
    print(f"{o.out}: {sum(len(v) for v in split['coastline'])} coastline and "
          f"{sum(len(v) for v in split['border'])} border points")


if __name__ == "__main__":
    main()
