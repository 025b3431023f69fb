"""The chart module (pocare.core.charts) on its own: ticks, number formats, time axes across a
daylight-saving change, bands where their values map, escaping and accessible text — each against
values worked out by hand — and the size limits that keep the module readable."""

from __future__ import annotations

import ast
import datetime as dt
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
import zoneinfo
from pathlib import Path

import pytest

from pocare.core import charts
from pocare.core.charts import Drawing, Margins, TimePoint

CHARTS = Path(charts.__file__).parent
AMS = zoneinfo.ZoneInfo("Europe/Amsterdam")
NS = {"svg": "http://www.w3.org/2000/svg"}
MAX_LINES, MAX_COMPLEXITY = 60, 15


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 (our own output) — and it must be well-formed


# --- the module stays small -------------------------------------------------------------------


def test_no_function_in_the_chart_module_is_over_60_lines():
    """Each function of pocare.core.charts, from its ``def`` to its last line, is at most 60 lines."""
    long = []
    for path in sorted(CHARTS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.name}:{node.lineno} {node.name}: {lines} lines")
    assert not long, long


def _too_complex(path: Path) -> list[str]:
    """The functions of ``path`` whose McCabe complexity is over the limit, as ruff's C901 counts it."""
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", "--select", "C901",
                           "--config", f"lint.mccabe.max-complexity={MAX_COMPLEXITY}", "--output-format", "concise",
                           str(path)], capture_output=True, text=True, check=False)
    assert done.returncode in (0, 1), done.stderr
    return [line for line in done.stdout.splitlines() if "C901" in line]


def test_no_function_in_the_chart_module_is_over_complexity_15():
    """Each function of pocare.core.charts has a cyclomatic complexity of at most 15."""
    assert [hit for path in sorted(CHARTS.glob("*.py")) for hit in _too_complex(path)] == []


def test_the_complexity_check_does_find_a_complex_function(tmp_path):
    """The check above is not vacuous: a function with 16 branches is reported."""
    branches = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(16))
    source = tmp_path / "knotted.py"
    source.write_text(f"def knotted(x):\n{branches}    return -1\n", encoding="utf-8")
    assert len(_too_complex(source)) == 1


# --- ticks and numbers ------------------------------------------------------------------------


@pytest.mark.parametrize(("lo", "hi", "expected"), [
    (0, 97, (0, 100, 20)),          # 97 / 5 = 19.4 → a step of 20
    (0, 1, (0, 1, 0.2)),
    (-3, 7, (-4, 8, 2)),            # 10 / 5 = 2; −3 and 7 are not on steps of 2, so −4 to 8
    (36, 38, (36, 38, 0.5)),        # 2 / 5 = 0.4 → 0.5
    (100, 1000, (0, 1000, 200)),    # 900 / 5 = 180 → 200
])
def test_a_nice_range_ends_on_whole_steps_of_1_2_2_5_or_5(lo, hi, expected):
    assert charts.nice_range(lo, hi) == pytest.approx(expected)


def test_nice_ranges_and_ticks_for_known_ranges():
    """0–97 is drawn 0–100 with ticks 0, 20 … 100; a padded range widens before it rounds."""
    low, high, step = charts.nice_range(0, 97)
    assert [low + k * step for k in range(round((high - low) / step) + 1)] == [0, 20, 40, 60, 80, 100]
    # 36–39.5 padded 8 %: 35.72–39.78, span 4.06 → step 1 → 35–40
    assert charts.nice_range(36, 39.5, pad=0.08) == pytest.approx((35, 40, 1))
    assert charts.nice_ticks(0.5, 40.5, 8) == [5, 10, 15, 20, 25, 30, 35, 40]
    assert charts.nice_ticks(-0.26, 0.26, 4) == [-0.2, 0, 0.2]  # 0.52 / 4 = 0.13 → 0.2
    assert charts.nice_ticks(3, 3) == [3] and charts.nice_ticks(float("nan"), 1) == []
    assert [charts.decimals_for(s) for s in (20, 2.5, 0.5, 0.25, 0.001)] == [0, 1, 1, 2, 3]


def test_number_formats():
    """Numbers carry a true minus sign; a value that rounds to zero has none."""
    assert charts.fmt_number(-1.5, digits=4) == "\u22121.5"
    assert charts.fmt_number(1234.5678, digits=4) == "1235"
    assert charts.fmt_number(38.0) == "38" and charts.fmt_number(0.1 + 0.2) == "0.3"
    assert charts.fmt_number(2.0, decimals=1) == "2.0" and charts.fmt_number(-0.0004, decimals=2) == "0.00"
    assert charts.with_unit("38", "°C") == "38 °C" and charts.with_unit("38", "") == "38"
    assert charts.count_words(1, "sites") == "1 site" and charts.count_words(6, "sites") == "6 sites"


# --- time -------------------------------------------------------------------------------------


def _labels(ticks: list[dt.datetime]) -> list[str]:
    return [f"{t.astimezone(AMS):%H:%M}" for t in ticks]


def test_time_ticks_across_the_change_to_summer_time_skip_the_missing_hour():
    """DI-ALCOA: on 29 March 2026 Amsterdam goes from 02:00 CET to 03:00 CEST (01:00 UTC); hourly ticks
    from 23:00 CET to 06:00 CEST fall on every UTC hour and the wall clock has no 02:00."""
    start = dt.datetime(2026, 3, 28, 22, tzinfo=dt.UTC)
    end = dt.datetime(2026, 3, 29, 4, tzinfo=dt.UTC)
    ticks, step = charts.time_ticks(start, end, AMS, max_ticks=7)
    assert step == 3600
    assert ticks == [start + dt.timedelta(hours=h) for h in range(7)]
    assert _labels(ticks) == ["23:00", "00:00", "01:00", "03:00", "04:00", "05:00", "06:00"]
    assert charts.zone_abbreviations(AMS, ticks) == "CET/CEST"


def test_time_ticks_across_the_change_back_tick_the_repeated_hour_once():
    """DI-ALCOA: on 25 October 2026 Amsterdam's clock goes from 03:00 CEST back to 02:00 CET (01:00 UTC);
    each wall-clock hour is ticked once, so 01:00 UTC (02:00 CET, the second time) has no tick."""
    start = dt.datetime(2026, 10, 24, 22, tzinfo=dt.UTC)
    end = dt.datetime(2026, 10, 25, 4, tzinfo=dt.UTC)
    ticks, _ = charts.time_ticks(start, end, AMS, max_ticks=7)
    assert [t.hour for t in ticks] == [22, 23, 0, 2, 3, 4]
    assert _labels(ticks) == ["00:00", "01:00", "02:00", "03:00", "04:00", "05:00"]
    assert charts.zone_abbreviations(AMS, ticks) == "CEST/CET"


def test_a_time_axis_is_labelled_in_the_site_zone_with_the_zone_named():
    """DI-ALCOA: the drawn axis shows local wall-clock times, the date under the first tick of each day,
    and the zone by name and abbreviations."""
    drawing = Drawing(700, 200, "t")
    plot = charts.time_plot(drawing, Margins(50, 10, 50, 60), dt.datetime(2026, 3, 28, 22, tzinfo=dt.UTC),
                            dt.datetime(2026, 3, 29, 4, tzinfo=dt.UTC), (0, 1))
    charts.time_axis(plot, AMS, spacing=80)
    svg = drawing.svg()
    assert re.findall(r">(\d\d:\d\d)<", svg) == ["23:00", "00:00", "01:00", "03:00", "04:00", "05:00", "06:00"]
    assert re.findall(r">(\d\d [A-Z][a-z]{2})<", svg) == ["28 Mar", "29 Mar"]
    assert "Local time at the site: Europe/Amsterdam (CET/CEST)" in svg
    assert charts.fmt_time(dt.datetime(2026, 3, 29, 1, tzinfo=dt.UTC), AMS) == "2026-03-29 03:00 CEST"


# --- drawing ----------------------------------------------------------------------------------


def _plot() -> tuple[Drawing, charts.Plot[float]]:
    """A 120 × 120 drawing, 10 px margins: the plot spans x 10–110 for 0–10 and y 110–10 for 0–100."""
    drawing = Drawing(120, 120, "scales")
    return drawing, charts.numeric_plot(drawing, Margins(10, 10, 10, 10), (0, 10), (0, 100))


def test_a_band_and_a_limit_are_drawn_where_their_values_map():
    """DI-ALCOA A11-ALARM: a band 20–60 covers y 90 up to 50 (height 40); a limit at 25 is at y 85; a
    span of x 2–4 covers x 30–50."""
    drawing, plot = _plot()
    plot.hband(20, 60, "band", cls="alarm-band")
    plot.hline(25, "green", cls="alarm-limit", label="alarm min 25", label_at="below")
    plot.vband(2.0, 4.0, "shade", note="phase I")
    root = _parse(drawing.svg())
    band = root.find("svg:rect[@class='alarm-band']", NS)
    assert band is not None and {k: band.get(k) for k in ("x", "y", "width", "height")} == {
        "x": "10", "y": "50", "width": "100", "height": "40"}
    limit = root.find("svg:line[@class='alarm-limit']", NS)
    assert limit is not None and (limit.get("y1"), limit.get("y2")) == ("85", "85")
    span = root.findall("svg:rect", NS)[-1]
    assert (span.get("x"), span.get("width"), span.findtext("svg:title", namespaces=NS)) == ("30", "20", "phase I")
    assert charts.Linear(0, 10, 100, 200)(2.5) == 125


def test_a_band_open_on_one_side_runs_to_the_edge_of_the_plot():
    """A11-ALARM: with only a minimum, the band runs from the minimum up to the top of the plot."""
    drawing, plot = _plot()
    plot.hband(30, None, "band", cls="alarm-band")
    band = _parse(drawing.svg()).find("svg:rect[@class='alarm-band']", NS)
    assert band is not None and (band.get("y"), band.get("height")) == ("10", "70")


def test_text_with_markup_characters_is_escaped_everywhere():
    """DI-ALCOA: a label, a title, a description and a tooltip holding < & " are written as text — the
    SVG stays well-formed and reads back as the same words."""
    words = 'Lot <7> & "B"'
    drawing, plot = _plot()
    drawing.desc = words
    plot.marker(5.0, 50.0, "ring", "bad", note=words, cls="flagged")
    plot.hline(50, "red", label=words)
    drawing.title = words
    svg = drawing.svg()
    assert "<7>" not in svg and "&lt;7&gt; &amp; &quot;B&quot;" in svg
    root = _parse(svg)
    assert root.findtext("svg:title", namespaces=NS) == words and root.findtext("svg:desc", namespaces=NS) == words
    assert root.findtext("svg:g[@class='flagged']/svg:title", namespaces=NS) == words
    assert [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")] == [words]
    bars = _parse(charts.bar_chart_svg([(words, 3, "info")], title=words, unit="lots"))
    assert [t.text for t in bars.iter("{http://www.w3.org/2000/svg}text")] == [words, "3 lots"]


def test_every_drawing_is_an_image_named_by_its_title_and_description():
    """DI-ALCOA: role="img" and aria-labelledby pointing at the <title> and <desc> it holds."""
    root = _parse(Drawing(100, 50, "Sites by status", desc="6 active, 1 suspended", css="chart").svg())
    assert root.get("role") == "img" and root.get("class") == "chart"
    ids = root.get("aria-labelledby", "").split()
    assert [root.find(f"*[@id='{i}']", NS).text for i in ids] == ["Sites by status", "6 active, 1 suspended"]
    assert root.get("viewBox") == "0 0 100 50"


# --- series -----------------------------------------------------------------------------------


def test_a_series_is_cut_at_a_gap_and_reduced_without_losing_a_flagged_value():
    """DI-ALCOA: readings a minute apart with a 20-minute hole draw as two runs; reduced to 2 pixel
    columns, the line keeps each column's first, lowest, highest and last, and the flagged value stays."""
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    minutes = [*range(10), *range(30, 40)]
    points = [TimePoint(t0 + dt.timedelta(minutes=m), float(m % 7), m == 33) for m in minutes]
    gap = charts.gap_seconds(points)
    assert gap == 300  # 5 × the median minute
    assert [len(run) for run in charts.segments(points, gap)] == [10, 10]
    line, flagged = charts.downsample(points, start=points[0].at, end=points[-1].at, columns=2)
    first = [int((p.at - t0).total_seconds() // 60) for p in line]
    # column 1 (minutes 0–9, values 0–6,0–2): first 0, low 0 (minute 0), high 6 (minute 6), last 9
    # column 2 (minutes 30–39, values 2–6,0–4): first 30, low 0 (minute 35), high 6 (minute 34), last 39
    assert first == [0, 6, 9, 30, 34, 35, 39]
    assert [int((p.at - t0).total_seconds() // 60) for p in flagged] == [33]
