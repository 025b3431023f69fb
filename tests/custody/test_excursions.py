"""Excursion detection over logger readings (pure module)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from pocare.custody.charts import temperature_svg
from pocare.custody.excursions import excursions_find

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def _series(values):  # type: ignore[no-untyped-def]
    return [(T0 + dt.timedelta(minutes=10 * i), D(str(v))) for i, v in enumerate(values)]


def test_spans_outside_the_limits_with_extreme_and_count():
    """ATMP-TRACE: readings outside 2–8 °C are found as spans (start, end, extreme, count); the
    limits themselves are inside."""
    found = excursions_find(_series([5, 8, 9.5, 11, 9, 6, 2, 1.2, 5]), D(2), D(8))
    assert [(e.side, e.count, e.extreme) for e in found] == [("high", 3, D("11")), ("low", 1, D("1.2"))]
    assert found[0].start == T0 + dt.timedelta(minutes=20) and found[0].end == T0 + dt.timedelta(minutes=40)


def test_no_excursion_and_one_sided_limits():
    """ATMP-TRACE: within limits nothing is found; a cryopreserved leg has only a maximum."""
    assert excursions_find(_series([3, 4, 7.99]), D(2), D(8)) == []
    found = excursions_find(_series([-180, -149.5, -160]), None, D(-150))
    assert len(found) == 1 and found[0].extreme == D("-149.5")


def test_unsorted_readings_and_side_changes():
    """ATMP-TRACE: readings are judged in time order; jumping from high to low starts a new span."""
    readings = list(reversed(_series([9, 1])))
    found = excursions_find(readings, D(2), D(8))
    assert [e.side for e in found] == ["high", "low"]


def test_chart_marks_limits_and_excursions():
    """ATMP-TRACE: the chart draws both limits and shades each excursion."""
    readings = _series([5, 9, 5])
    svg = temperature_svg(readings, D(2), D(8), [(readings[1][0], readings[1][0])])
    assert svg.startswith("<svg") and "max 8" in svg and "min 2" in svg and "excursion" in svg
    assert temperature_svg([], D(2), D(8)) == ""
