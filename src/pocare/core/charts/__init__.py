"""One way to draw a chart in POCare: inline SVG written on the server, no JavaScript, no library.

The charts are embedded in pages under a Content-Security-Policy that runs no inline script and are
printed in PDFs by WeasyPrint; SVG drawn here works in both. An app maps its data onto these parts
and draws nothing by hand (see ``docs/charts.md``):

- :mod:`~pocare.core.charts.scales` — nice ticks, number formats, linear and time scales, ticks at
  round local times of the site's zone;
- :mod:`~pocare.core.charts.svg` — escaped elements, the palette, and :class:`Drawing` (the ``<svg>``
  with its ``<title>``, ``<desc>`` and ``aria-labelledby``);
- :mod:`~pocare.core.charts.plot` — :class:`Plot` (grid, bands, limit lines, series, markers, event
  marks), the time axis and legends;
- :mod:`~pocare.core.charts.bars` — horizontal bars and histogram columns;
- :mod:`~pocare.core.charts.series` — time series reduced for drawing and cut at gaps.

Pure Python (no Django import), so a chart can be drawn, tested and benchmarked on its own.
"""

from pocare.core.charts.bars import Bar, bar_chart_svg, bars_svg, bin_counts, columns, count_words
from pocare.core.charts.plot import LegendItem, Margins, Plot, legend, marker, numeric_plot, time_axis, time_plot
from pocare.core.charts.scales import (
    Linear,
    TimeScale,
    decimals_for,
    fmt_number,
    fmt_time,
    nice_range,
    nice_step,
    nice_ticks,
    padded,
    time_ticks,
    with_unit,
    zone_abbreviations,
    zone_name,
)
from pocare.core.charts.series import TimePoint, downsample, gap_seconds, segments
from pocare.core.charts.svg import PALETTE, Drawing, colour, esc, tag, text, tip

__all__ = [
    "PALETTE", "Bar", "Drawing", "LegendItem", "Linear", "Margins", "Plot", "TimePoint", "TimeScale",
    "bar_chart_svg", "bars_svg", "bin_counts", "colour", "columns", "count_words", "decimals_for", "downsample",
    "esc", "fmt_number", "fmt_time", "gap_seconds", "legend", "marker", "nice_range", "nice_step", "nice_ticks",
    "numeric_plot", "padded", "segments", "tag", "text", "time_axis", "time_plot", "time_ticks", "tip", "with_unit",
    "zone_abbreviations", "zone_name",
]
