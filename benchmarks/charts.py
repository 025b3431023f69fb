"""Benchmark of one typical chart: the device parameter chart of the batch record drawn by
``pocare.core.charts``, and the same chart drawn by matplotlib's SVG backend when matplotlib can be
imported (it is not a POCare dependency; the dev environment has it through pointpats). The figures
and the decision they support are in ``docs/charts.md``.

The chart: N readings two minutes apart from 28 March 2026 20:00 UTC (across Amsterdam's change to
summer time), an alarm band 36–38 °C, three values outside it, a gap in the data, two alarms.

Usage::

    .venv/bin/python benchmarks/charts.py            # 500 readings
    .venv/bin/python benchmarks/charts.py 5000
"""

from __future__ import annotations

import datetime as dt
import io
import math
import random
import statistics
import sys
import time
import timeit
import zoneinfo
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pocare.manufacturing.charts import parameter_chart_svg

AMS = zoneinfo.ZoneInfo("Europe/Amsterdam")
START = dt.datetime(2026, 3, 28, 20, 0, tzinfo=dt.UTC)


def readings(n: int) -> list[tuple[dt.datetime, float, bool]]:
    rng = random.Random(7)
    spikes = {150, 151, 300}
    points = [(START + dt.timedelta(minutes=2 * i),
               39.2 if i in spikes else 37.0 + math.sin(i / 15) * 0.4 + rng.gauss(0, 0.1), i in spikes)
              for i in range(n)]
    return points[:200] + points[230:]  # an hour without data


def ours(points: list[tuple[dt.datetime, float, bool]]) -> str:
    alarms = [(points[150][0], "A1", False), (points[-60][0], "A2", True)]
    return parameter_chart_svg(points, alarm_min=36.0, alarm_max=38.0, name="Culture chamber temperature",
                               unit="°C", alarms=alarms, tz=AMS)


def matplotlib_svg(points: list[tuple[dt.datetime, float, bool]]) -> str:
    """The same elements with matplotlib: band, limits with labels, line, marks, alarms, local axis."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.2, 2.8), dpi=100)
    times, values = [p[0] for p in points], [p[1] for p in points]
    ax.axhspan(36.0, 38.0, color="#e6f4ea")
    for value, word in ((38.0, "max"), (36.0, "min")):
        ax.axhline(value, color="#2f8f4e", ls="--", lw=1.2)
        ax.text(times[-1], value, f"alarm {word} {value:g} °C", ha="right", va="bottom", color="#2f8f4e")
    ax.plot(times, values, color="#2c6fb3", lw=1.6, label="value")
    outside = [p for p in points if p[2]]
    ax.scatter([p[0] for p in outside], [p[1] for p in outside], color="#c0392b", s=20, zorder=3, label="outside")
    for at, label, acknowledged in ((points[150][0], "A1", False), (points[-60][0], "A2", True)):
        ax.axvline(at, color="#8795a1" if acknowledged else "#c0392b", lw=1.2, ls=":" if acknowledged else "-")
        ax.annotate(label, (mdates.date2num(at), 1), xycoords=("data", "axes fraction"), color="#c0392b")
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(tz=AMS))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=AMS))
    ax.set_xlabel("Local time at the site: Europe/Amsterdam (CET/CEST)")
    ax.set_title("Culture chamber temperature (°C)", loc="left")
    ax.grid(color="#e3e8ee")
    ax.legend(loc="lower left", ncols=2)
    out = io.StringIO()
    fig.savefig(out, format="svg")
    plt.close(fig)
    return out.getvalue()


def timed(label: str, draw: object, repeat: int) -> None:
    assert callable(draw)
    svg = draw()
    runs = timeit.repeat(draw, number=1, repeat=repeat)
    print(f"{label:<42} best {min(runs) * 1000:8.2f} ms  median {statistics.median(runs) * 1000:8.2f} ms  "
          f"{len(svg.encode()):>7} bytes")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    points = readings(n)
    print(f"parameter chart, {len(points)} readings")
    timed("pocare.core.charts", lambda: ours(points), 30)
    try:
        began = time.perf_counter()
        import matplotlib

        matplotlib.use("svg")
        import matplotlib.pyplot
    except ImportError:
        print("matplotlib is not installed: nothing to compare")
        return
    print(f"matplotlib {matplotlib.__version__} import: {time.perf_counter() - began:.2f} s")
    matplotlib.rcParams["svg.fonttype"] = "none"
    timed("matplotlib svg, text as <text>", lambda: matplotlib_svg(points), 10)
    matplotlib.rcParams["svg.fonttype"] = "path"
    timed("matplotlib svg, glyphs as paths (default)", lambda: matplotlib_svg(points), 10)


if __name__ == "__main__":
    main()
