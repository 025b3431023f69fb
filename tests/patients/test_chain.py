"""The slot-chain proposal (pocare.patients.chain): every proposed chain is feasible, and no
earlier infusion exists, checked against a brute-force enumeration of every apheresis slot, unit,
start minute and infusion slot on small instances (a different algorithm from the bisections)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pocare.patients.chain import Candidate, Chain, Problem, Slot, Unit, feasibility_problems, propose, start_windows

HORIZON = 120  # small instances: every moment 0..HORIZON is enumerated


def brute_force(problem: Problem, apheresis: list[Slot], infusion: list[Slot], site: Candidate) -> Chain | None:
    """Every (apheresis slot, unit, integer start minute, infusion slot): the earliest infusion,
    ties broken as the proposal does (earliest apheresis end, then start, then the unit listed first)."""
    best: tuple[tuple[float, ...], Chain] | None = None
    for a in apheresis:
        if a.start < problem.after:
            continue
        for order, unit in enumerate(site.units):
            start = a.end + site.travel
            while start <= a.end + problem.hold:
                end = start + problem.duration
                if start >= problem.after and not any(s < end and start < e for s, e in unit.busy):
                    ready = end + problem.release_lead
                    for inf in infusion:
                        if inf.start >= ready + site.travel and inf.start >= problem.after:
                            key = (inf.start, a.end, a.start, a.key, start, order, inf.key)
                            if best is None or key < best[0]:
                                best = (key, Chain(site.key, site.travel, a, unit.key, start, end, ready, inf))
                    break  # a later start on this unit gives no earlier infusion
                start += 1
    return None if best is None else best[1]


def slots(draw: st.DrawFn, first_key: int, count: int) -> list[Slot]:
    out = []
    for k in range(count):
        start = draw(st.integers(0, HORIZON))
        out.append(Slot(first_key + k, start, start + draw(st.integers(1, 4))))
    return out


@st.composite
def instances(draw: st.DrawFn) -> tuple[Problem, list[Slot], list[Slot], list[Candidate]]:
    problem = Problem(duration=draw(st.integers(1, 20)), release_lead=draw(st.integers(0, 10)),
                      hold=draw(st.integers(0, 30)), after=draw(st.integers(0, 10)))
    apheresis = slots(draw, 1, draw(st.integers(0, 6)))
    infusion = slots(draw, 100, draw(st.integers(0, 6)))
    sites = []
    for site_key in range(draw(st.integers(1, 3))):
        units = []
        for unit_key in range(draw(st.integers(0, 3))):
            busy = []
            for _ in range(draw(st.integers(0, 4))):
                s = draw(st.integers(0, HORIZON))
                busy.append((s, s + draw(st.integers(1, 30))))
            units.append(Unit(site_key * 10 + unit_key, tuple(busy)))
        sites.append(Candidate(site_key, draw(st.integers(0, 8)), tuple(units)))
    return problem, apheresis, infusion, sites


@settings(max_examples=400, deadline=None)
@given(instances())
def test_every_proposed_chain_is_feasible_and_none_earlier_exists(instance):
    """A proposal per site that has a feasible chain; it is feasible link by link; its infusion is
    the earliest the brute force finds; and a site without a proposal has no feasible chain at all."""
    problem, apheresis, infusion, sites = instance
    proposed = {c.site: c for c in propose(problem, apheresis=apheresis, infusion=infusion, sites=sites)}
    for site in sites:
        expected = brute_force(problem, apheresis, infusion, site)
        chain = proposed.get(site.key)
        if expected is None:
            assert chain is None
            continue
        assert chain is not None
        assert feasibility_problems(problem, chain, site) == []
        assert chain.infusion.start == expected.infusion.start
        assert (chain.apheresis, chain.unit, chain.manufacturing_start) == \
            (expected.apheresis, expected.unit, expected.manufacturing_start)


@settings(max_examples=200, deadline=None)
@given(instances())
def test_proposals_are_ranked_by_infusion_then_travel(instance):
    problem, apheresis, infusion, sites = instance
    chains = propose(problem, apheresis=apheresis, infusion=infusion, sites=sites)
    ranks = [(c.infusion.start, c.travel) for c in chains]
    assert ranks == sorted(ranks)


def test_a_unit_busy_through_the_material_hold_moves_the_chain_to_a_later_apheresis_slot():
    """The first apheresis slot's material would expire waiting for the unit: the chain starts
    from the slot whose hold reaches the unit's free window, not from the first slot."""
    problem = Problem(duration=10, release_lead=5, hold=4)
    apheresis = [Slot(1, 0, 2), Slot(2, 10, 12), Slot(3, 40, 42)]
    unit = Unit(7, ((0, 41),))
    site = Candidate(1, 1, (unit,))
    (chain,) = propose(problem, apheresis=apheresis, infusion=[Slot(9, 100, 101)], sites=[site])
    assert (chain.apheresis.key, chain.manufacturing_start, chain.manufacturing_end, chain.ready) == (3, 43, 53, 58)
    assert feasibility_problems(problem, chain, site) == []


def test_feasibility_names_each_broken_link():
    problem = Problem(duration=10, release_lead=5, hold=4)
    site = Candidate(1, 2, (Unit(7, ((5, 8),)),))
    chain = Chain(1, 2, Slot(1, 0, 2), 7, 3, 12, 14, Slot(9, 15, 16))
    problems = feasibility_problems(problem, chain, site)
    assert problems == ["manufacturing starts before the material reaches the site",
                        "the manufacturing window is not the process duration",
                        "the unit is taken during the manufacturing window",
                        "the product is released before QC and release are done",
                        "the infusion slot is before the product can reach the hospital"]


def test_start_windows_leave_out_gaps_shorter_than_the_process():
    assert start_windows([(10, 20), (25, 40), (18, 22)], 5) == ([float("-inf"), 40], [5, float("inf")])
    assert start_windows([], 5, after=3) == ([3], [float("inf")])


@settings(max_examples=300, deadline=None)
@given(busy=st.lists(st.tuples(st.integers(0, 200), st.integers(1, 40)).map(lambda p: (p[0], p[0] + p[1])),
                     max_size=8),
       duration=st.integers(1, 30), moments=st.lists(st.integers(0, 260), min_size=1, max_size=6))
def test_the_forward_cursor_agrees_with_the_whole_unit_windows(busy, duration, moments):
    """The forward-only walk the proposal uses gives the same earliest start as the windows of the
    whole unit bisected, for moments asked in increasing order."""
    from pocare.patients.chain import _Cursor, earliest_start

    lo, hi = start_windows(busy, duration)
    cursor = _Cursor(busy, duration)
    for at in sorted(moments):
        assert cursor.earliest(at) == earliest_start(lo, hi, at)
