"""Time series made ready for drawing: reduced to what a pixel column can show without hiding a
peak, a trough or a flagged value, and cut where the data has a gap."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import statistics
from collections.abc import Sequence
from typing import NamedTuple


class TimePoint(NamedTuple):
    """One reading: when (aware), the value, and whether it is flagged (outside its limits)."""

    at: dt.datetime
    value: float
    flagged: bool = False


def _extremes(bucket: Sequence[TimePoint]) -> list[TimePoint]:
    """The lowest and the highest point of ``bucket``, once each, in time order."""
    low, high = min(bucket, key=lambda p: p.value), max(bucket, key=lambda p: p.value)
    return sorted({id(p): p for p in (low, high)}.values(), key=lambda p: p.at)


def _reduce(bucket: Sequence[TimePoint]) -> tuple[list[TimePoint], list[TimePoint]]:
    """What a column keeps: first, lowest, highest and last for the line; the extreme flagged ones."""
    keep = {id(p): p for p in (bucket[0], *_extremes(bucket), bucket[-1])}
    flagged = [p for p in bucket if p.flagged]
    return sorted(keep.values(), key=lambda p: p.at), _extremes(flagged) if flagged else []


def downsample(points: Sequence[TimePoint], *, start: dt.datetime, end: dt.datetime,
               columns: int) -> tuple[list[TimePoint], list[TimePoint]]:
    """Reduce a time-ordered series to what can be drawn in ``columns`` pixel columns.

    Returns the points of the line (per column: first, lowest, highest, last, in time order) and
    the points to mark as flagged (per column: the highest and the lowest flagged value). Series of
    at most four points per column are returned whole.
    """
    if len(points) <= 4 * columns:
        return list(points), [p for p in points if p.flagged]
    per_second = columns / ((end - start).total_seconds() or 1.0)
    keys = [min(int((p.at - start).total_seconds() * per_second), columns - 1) for p in points]
    line: list[TimePoint] = []
    flagged: list[TimePoint] = []
    for _, run in itertools.groupby(zip(keys, points, strict=True), key=lambda kp: kp[0]):
        kept, marks = _reduce([p for _, p in run])
        line.extend(kept)
        flagged.extend(marks)
    return line, flagged


def gap_seconds(points: Sequence[TimePoint], *, factor: float = 5, floor: float = 60.0) -> float:
    """How long a silence must be to count as a gap: ``factor`` times the median interval between
    readings, at least ``floor`` seconds (infinite for fewer than two readings)."""
    steps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(points)]
    return max(factor * statistics.median(steps), floor) if steps else math.inf


def segments(points: Sequence[TimePoint], gap: float) -> list[list[tuple[dt.datetime, float]]]:
    """The points as ``(at, value)`` runs, a new run after every silence longer than ``gap`` seconds."""
    runs: list[list[tuple[dt.datetime, float]]] = []
    for i, p in enumerate(points):
        if i == 0 or (p.at - points[i - 1].at).total_seconds() > gap:
            runs.append([])
        runs[-1].append((p.at, p.value))
    return runs
