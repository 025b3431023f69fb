"""The site page draws the latest lots of a long series (pocare.analytics.pages.latest_lots): the
figures computed on every lot stay, the points drawn and their flags move together."""

from __future__ import annotations

from pocare.analytics.pages import draw_charts, latest_lots


def _series(n: int) -> dict:  # type: ignore[type-arg]
    values = [50.0 + (i % 7) for i in range(n)]
    return {"references": [f"MAD-{i:04d}" for i in range(n)], "values": values,
            "flags": [(10, ["nelson-1"]), (n - 10, ["nelson-2", "we-2"])],
            "limits": {"centre": 53.0, "sigma": 2.0, "ucl": 59.0, "lcl": 47.0, "mr_bar": 2.2, "baseline": 20},
            "ewma": {"z": values, "ucl": [58.0] * n, "lcl": [48.0] * n, "lam": 0.2, "width": 2.86,
                     "flags": [5, n - 1]},
            "cusum": {"upper": [0.0] * n, "lower": [0.0] * n, "h": 5.0, "k": 0.5, "flags": [n - 3]},
            "hits": [], "capability": {"mean": 53.0, "sigma_overall": 2.0}}


def test_a_long_series_is_cut_to_its_latest_lots_with_flags_moved_and_every_lot_kept_for_the_figures():
    """CMP-STAT: 300 lots, 250 drawn: lots 51–300; the flag of lot 291 is at position 240 of the cut,
    the flags of lots 11 and 6 (before the cut) are gone, phase I (lots 1–20) is no longer drawn."""
    cut = latest_lots(_series(300), 250)
    assert cut["shown"] == {"first": 51, "last": 300, "total": 300}
    assert len(cut["references"]) == len(cut["values"]) == len(cut["ewma"]["z"]) == len(cut["cusum"]["upper"]) == 250
    assert cut["references"][0] == "MAD-0050" and cut["references"][240] == "MAD-0290"
    assert cut["flags"] == [(240, ["nelson-2", "we-2"])]
    assert cut["ewma"]["flags"] == [249] and cut["cusum"]["flags"] == [247]
    assert cut["limits"]["baseline"] == 0 and cut["limits"]["centre"] == 53.0


def test_a_short_series_is_drawn_whole_and_the_histogram_counts_every_lot():
    """CMP-STAT: under the window nothing is cut; over it, the histogram still shows all the lots."""
    assert latest_lots(_series(100), 250) == _series(100)
    spec = {"id": "car", "name": "CAR+ cells", "unit": "%", "lsl": 40.0, "usl": 70.0}
    whole = draw_charts(spec, "MAD", _series(300))
    cut = draw_charts(spec, "MAD", _series(300), last=250)
    assert cut["shown"]["first"] == 51 and "shown" not in whole
    assert cut["histogram"] == whole["histogram"]
    assert len(cut["control"]) < len(whole["control"])


def test_the_t2_chart_draws_the_latest_lots_and_still_names_every_lot_above_its_limit():
    """CMP-STAT (issue 15): a site of 1,800 lots drew 1,800 T² markers on each request; the chart
    draws the latest ones as the run charts do, saying which, while the lots above the limit are
    named from every lot."""
    from pocare.analytics.pages import draw_t2

    n = 300
    figures = {"attributes": ["viability", "dose"], "values": [20.0 if i == 3 else 1.0 for i in range(n)],
               "labels": [f"MAD-{i:04d}" for i in range(n)], "ucl": 12.0, "m": 90, "above": ["MAD-0003"]}
    drawn = draw_t2(figures, "MAD", last=100)
    assert drawn["shown"] == {"first": 201, "last": 300, "total": 300}
    assert "MAD-0299" in drawn["svg"] and "MAD-0199" not in drawn["svg"] and "MAD-0003" not in drawn["svg"]
    assert drawn["above"] == ["MAD-0003"]
    whole = draw_t2(figures, "MAD")
    assert whole["shown"] is None and "MAD-0003" in whole["svg"]


def test_charts_are_drawn_once_per_input_and_never_stale():
    """CMP-STAT (issue 15): the site page's charts are half its time; the same stored figures are drawn
    once in a process and the drawing reused, while a change of any input (a new lot) draws anew."""
    from pocare.analytics import pages

    spec = {"id": "car", "name": "CAR+ cells", "unit": "%", "lsl": 40.0, "usl": 70.0}
    pages._DRAWN.clear()
    first = draw_charts(spec, "MAD", _series(120), last=100)
    again = draw_charts(spec, "MAD", _series(120), last=100)
    assert again == first and len(pages._DRAWN) == 1
    assert again == pages._draw_charts(spec, "MAD", _series(120), compact=False, last=100)  # what it would draw
    grown = draw_charts(spec, "MAD", _series(121), last=100)
    assert grown["control"] != first["control"] and "MAD-0120" in grown["control"] and len(pages._DRAWN) == 2
    for n in range(pages._DRAWN_MAX + 5):
        draw_charts(spec, f"S{n}", _series(30))
    assert len(pages._DRAWN) == pages._DRAWN_MAX  # bounded: the oldest drawings go first
