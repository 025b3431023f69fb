"""The earliest feasible chain of slots for a patient at each candidate manufacturing site.

A chain is: an apheresis slot at the treating hospital (the collection centre) → the material
travels to the manufacturing site → a manufacturing unit there is free for the whole process,
starting while the material is still fit for manufacture (``hold`` after the end of collection)
→ QC and release (``release_lead``) → the product travels back → an infusion slot at the hospital.

Times are plain numbers in one unit (the booking uses whole minutes since the Unix epoch); every
interval is half-open, ``[start, end)``. Pure module (no Django import): the booking proposes with
it, the benchmark times it and the property tests compare it with a brute-force enumeration.

How it is fast. The earliest start on a unit at or after a moment ``r`` never decreases when ``r``
grows, and so neither does the infusion it leads to: the first apheresis slot (by its end) whose
material finds a unit within its hold gives the site's earliest infusion. Each unit is walked by a
cursor over its busy intervals (sorted by start) that only moves forward, so a site costs the busy
intervals up to its chain, not the year; apheresis slots that cannot reach the next free start are
skipped in one bisection. :func:`start_windows` states the same free windows for a whole unit at once
(for people and tests).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

INF = float("inf")


@dataclass(frozen=True)
class Slot:
    """A free clinic slot (apheresis or infusion) at the hospital: ``key`` identifies it to the caller."""

    key: int
    start: float
    end: float


@dataclass(frozen=True)
class Unit:
    """A manufacturing unit and the intervals it is taken (running batches, booked reservations)."""

    key: int
    busy: Sequence[tuple[float, float]] = ()


@dataclass(frozen=True)
class Candidate:
    """A manufacturing site that could make the product: its units and the travel time each way
    between the hospital and the site (0 when the hospital makes the product itself)."""

    key: int
    travel: float
    units: Sequence[Unit]


@dataclass(frozen=True)
class Chain:
    """One site's earliest feasible chain."""

    site: int
    travel: float
    apheresis: Slot
    unit: int
    manufacturing_start: float
    manufacturing_end: float
    ready: float  # QC and release done, the product leaves the site
    infusion: Slot

    def rank(self) -> tuple[float, float, float, int]:
        """Earliest infusion first, then the shorter travel, then the earlier apheresis."""
        return (self.infusion.start, self.travel, self.apheresis.start, self.site)


def start_windows(busy: Iterable[tuple[float, float]], duration: float, *, after: float = -INF
                  ) -> tuple[list[float], list[float]]:
    """The sorted windows ``[lo[i], hi[i]]`` of the moments a process of ``duration`` may start on
    a unit taken over ``busy`` (and not before ``after``): it must end before the next busy
    interval begins. The last window is open-ended."""
    merged: list[list[float]] = []
    for start, end in sorted((s, e) for s, e in busy if e > after and e > s):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    lo: list[float] = []
    hi: list[float] = []
    free_from = after
    for start, end in merged:
        if start - duration >= free_from:
            lo.append(free_from)
            hi.append(start - duration)
        free_from = max(free_from, end)
    lo.append(free_from)
    hi.append(INF)
    return lo, hi


def earliest_start(lo: Sequence[float], hi: Sequence[float], at: float) -> float:
    """The earliest moment ≥ ``at`` inside one of the windows (bisection on their ends)."""
    i = bisect_left(hi, at)
    return max(at, lo[i])  # the last window is open-ended: i < len(hi)


@dataclass(frozen=True)
class Problem:
    """What a chain needs besides the slots and units: the process ``duration``, the QC and
    release ``release_lead``, how long the material may wait for its start after the end of
    collection (``hold``), and the earliest moment anything may begin (``after``)."""

    duration: float
    release_lead: float
    hold: float
    after: float = -INF


class _Cursor:
    """The earliest start of a process of ``duration`` on one unit at or after a moment, for moments
    asked in increasing order: the walk over the busy intervals (sorted by start) only moves forward."""

    __slots__ = ("answer", "busy", "duration", "i")

    def __init__(self, busy: Sequence[tuple[float, float]], duration: float) -> None:
        self.busy = sorted(busy)
        self.duration = duration
        self.i = 0
        self.answer = -INF

    def earliest(self, at: float) -> float:
        if at <= self.answer:  # nothing starts between the last question and its answer
            return self.answer
        busy, n, duration, i, t = self.busy, len(self.busy), self.duration, self.i, at
        while i < n:
            start, end = busy[i]
            if end <= t:
                i += 1
            elif t + duration <= start:
                break
            else:
                t = end
                i += 1
        self.i, self.answer = i, t
        return t


def site_chain(problem: Problem, apheresis: Sequence[Slot], apheresis_ends: Sequence[float],
               infusion: Sequence[Slot], infusion_starts: Sequence[float], site: Candidate) -> Chain | None:
    """The site's earliest feasible chain, or ``None``. ``apheresis`` (none before ``problem.after``)
    is sorted by end and ``apheresis_ends`` is its list of ends; ``infusion`` is sorted by start and
    ``infusion_starts`` is its list of starts."""
    if not site.units or not apheresis or not infusion:
        return None
    cursors = [(u.key, _Cursor(u.busy, problem.duration)) for u in site.units]
    i, n = 0, len(apheresis)
    while i < n:
        slot = apheresis[i]
        arrival = max(slot.end + site.travel, problem.after)
        best_key, best_start = -1, INF
        for key, cursor in cursors:
            s = cursor.earliest(arrival)
            if s < best_start:
                best_key, best_start = key, s
        if best_start <= slot.end + problem.hold:
            end = best_start + problem.duration
            ready = end + problem.release_lead
            j = bisect_left(infusion_starts, ready + site.travel)
            if j == len(infusion):
                return None
            return Chain(site.key, site.travel, slot, best_key, best_start, end, ready, infusion[j])
        # No unit within this slot's hold: skip every slot whose hold ends before the next free start.
        i = max(i + 1, bisect_left(apheresis_ends, best_start - problem.hold))
    return None


def propose(problem: Problem, *, apheresis: Iterable[Slot], infusion: Iterable[Slot],
            sites: Iterable[Candidate]) -> list[Chain]:
    """Every candidate site's earliest feasible chain, ranked: earliest infusion, then shorter
    travel. Sites without a feasible chain in the slots given are left out."""
    aph = sorted((s for s in apheresis if s.start >= problem.after), key=lambda s: (s.end, s.start, s.key))
    inf = sorted((s for s in infusion if s.start >= problem.after), key=lambda s: (s.start, s.key))
    aph_ends = [s.end for s in aph]
    inf_starts = [s.start for s in inf]
    out = [c for site in sites if (c := site_chain(problem, aph, aph_ends, inf, inf_starts, site)) is not None]
    out.sort(key=Chain.rank)
    return out


def feasibility_problems(problem: Problem, chain: Chain, site: Candidate) -> list[str]:
    """Why ``chain`` is not feasible at ``site`` (empty: it is): each link in order, the unit free
    for the whole process. The booking re-checks a proposal with this before it books."""
    out = []
    if chain.apheresis.start < problem.after:
        out.append("the apheresis slot is before the earliest allowed moment")
    if chain.manufacturing_start < chain.apheresis.end + site.travel:
        out.append("manufacturing starts before the material reaches the site")
    if chain.manufacturing_start > chain.apheresis.end + problem.hold:
        out.append("manufacturing starts after the material's hold has ended")
    if chain.manufacturing_end != chain.manufacturing_start + problem.duration:
        out.append("the manufacturing window is not the process duration")
    unit = next((u for u in site.units if u.key == chain.unit), None)
    if unit is None:
        out.append("the unit is not one of the site's")
    elif any(s < chain.manufacturing_end and chain.manufacturing_start < e for s, e in unit.busy):
        out.append("the unit is taken during the manufacturing window")
    if chain.ready < chain.manufacturing_end + problem.release_lead:
        out.append("the product is released before QC and release are done")
    if chain.infusion.start < chain.ready + site.travel:
        out.append("the infusion slot is before the product can reach the hospital")
    return out
