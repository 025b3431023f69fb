"""The network's outcomes in the open (issue 17): figures against hand-worked cases, small numbers
suppressed on the page and in the CSV so that none can be worked out (PAT-PRIVACY), a page that
costs the same queries at any size, and its scoping. Day-100 response and CRS/ICANS grades come
from the follow-up of PAT-LTFU and PAT-GRADE."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from pocare.patients import outcomes as o
from pocare.patients.models import LostReason, Stage

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def rec(n: int, site: str = "MAD", *, stage: str = "referred", infused: float | None = None,
        collected: float | None = None, **kw: object) -> o.Record:
    """A record referred at T0; ``infused``/``collected`` in days after referral."""
    return o.Record(patient=n, referral=n, site=site, referred_at=T0, stage=stage,
                    infused_at=T0 + dt.timedelta(days=infused) if infused is not None else None,
                    collected_at=T0 + dt.timedelta(days=collected) if collected is not None else None,
                    **kw)  # type: ignore[arg-type]


# --- The pure part -----------------------------------------------------------------------------------

def test_pure_module_agrees_with_the_models_choices():
    """The pure module names stages and lost reasons by value; they are the models' values."""
    assert {o.INELIGIBLE, o.WITHDRAWN, o.LOST} <= set(Stage.values)
    assert set(o.LOST_REASONS) == set(LostReason.values)


def test_wilson_interval_hand_worked_and_against_statsmodels():
    """Wilson 95 % intervals: 0/10 is 0–27.8 %, 5/10 is 23.7–76.3 % (Newcombe 1998, table I), and
    they agree with statsmodels' ``proportion_confint(method="wilson")``."""
    low, high = o.wilson(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = o.wilson(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    statsmodels = pytest.importorskip("statsmodels.stats.proportion")
    for k, n in [(1, 7), (3, 40), (12, 12), (27, 31)]:
        assert o.wilson(k, n) == pytest.approx(statsmodels.proportion_confint(k, n, method="wilson"), abs=1e-12)
    with pytest.raises(ValueError):
        o.wilson(3, 2)


def test_times_treated_share_response_and_toxicity_hand_worked():
    """PAT-LTFU PAT-GRADE: ten patients at one site, worked by hand.

    Six treated, infused 20, 30, 40, 50, 60, 70 days after referral (median 45; inclusive quartiles
    32.5 and 57.5), collected 14 days before infusion each (vein to vein 14 d); two waiting, one lost
    (died), one not eligible. Day 100: CR, PR, CR, PR, CR, SD, so 5 of 6 evaluated responded; CRS
    grades 3, 1, 0, 2, 1, 0 and ICANS none: CRS ≥ 3 in 1 of 6. Counts under 5 (none included) are
    "< 5"; the treated share 6/10 is published (60 %, Wilson 31–83 %)."""
    responses = ["CR", "PR", "CR", "PR", "CR", "SD"]
    crs = [3, 1, 0, 2, 1, None]
    records = [rec(i, stage="infused", infused=20 + 10 * i, collected=6 + 10 * i, response_day100=responses[i],
                   max_crs_grade=crs[i]) for i in range(6)]
    records += [rec(6, stage="booked"), rec(7, stage="eligible"), rec(8, stage="lost", lost_reason="died"),
                rec(9, stage="ineligible")]
    result = o.outcomes(records)
    row = result.network
    assert row.referred.number == 10 and row.treated.number == 6
    assert row.treated_share.share == pytest.approx(0.6)
    assert (row.treated_share.low, row.treated_share.high) == (pytest.approx(0.3127, abs=1e-3),
                                                             pytest.approx(0.8318, abs=1e-3))
    r2i = row.referral_to_infusion
    assert (r2i.median, r2i.q1, r2i.q3) == (45.0, 32.5, 57.5)
    assert row.vein_to_vein.median == 14.0 and row.vein_to_vein.q1 == 14.0
    # 5 of 6 evaluated responded: the one who did not is a small number, so the pair is withheld.
    assert row.evaluated.number == 6 and row.responders.text == o.WITHHELD_TEXT and row.response.share is None
    # 1 CRS ≥ 3: "< 5", never the number, and no rate; no ICANS ≥ 3 is "< 5" too, so "< 5" never
    # tells a reader that someone had it.
    assert row.crs3.text == "< 5" and row.crs3.number is None and row.crs3_rate.share is None
    assert row.icans3.text == "< 5" and row.icans3_rate.share is None
    assert row.withdrawn.text == "< 5"
    assert row.lost.text == "< 5" and row.lost_by_reason["died"].text == "< 5"
    assert row.waiting.text == "< 5" and row.ineligible.text == "< 5"


def test_each_patient_counts_once_by_the_latest_referral():
    """A patient referred twice (the first manufacture failed) counts once, where their pathway ended."""
    first = rec(1, stage="lost", lost_reason="manufacturing")
    again = o.Record(patient=1, referral=2, site="MAD", referred_at=T0 + dt.timedelta(days=40), stage="infused",
                     infused_at=T0 + dt.timedelta(days=80))
    assert o.latest_per_patient([again, first]) == [again]
    result = o.outcomes([first, again] + [rec(i, stage="infused", infused=30) for i in range(10, 15)])
    assert result.patients == 6 and result.network.treated.number == 6 and result.network.lost.text == "< 5"


def test_times_from_fewer_than_five_patients_are_not_published():
    """PAT-PRIVACY: four treated patients give no median (it would be one patient's time)."""
    result = o.outcomes([rec(i, stage="infused", infused=30 + i) for i in range(4)])
    assert not result.network.referral_to_infusion.shown
    assert "fewer than 5" in result.network.referral_to_infusion.text


def test_primary_and_secondary_suppression_on_a_line():
    """PAT-PRIVACY: with a total published, one small part would be the total minus the others; the
    smallest other part is withheld, and the pair still cannot be pinned by the bounds a reader
    knows (a "< 5" is 1 to 4, a withheld cell at least 5)."""
    values = {("t", "*"): 20, ("a", "*"): 3, ("b", "*"): 6, ("c", "*"): 11}
    line = o.Line(("t", "*"), (("a", "*"), ("b", "*"), ("c", "*")))
    state = o.suppress(values, [line])
    assert state == {("t", "*"): "shown", ("a", "*"): "small", ("b", "*"): "withheld", ("c", "*"): "shown"}
    # A zero is "< 5" as well (0 to 4 to a reader), and beside a small 3 it hides it: 3 = 3 + 0 or 2 + 1 …
    values = {("t", "*"): 14, ("a", "*"): 3, ("z", "*"): 0, ("c", "*"): 11}
    state = o.suppress(values, [o.Line(("t", "*"), (("a", "*"), ("z", "*"), ("c", "*")))])
    assert state == {("t", "*"): "shown", ("a", "*"): "small", ("z", "*"): "small", ("c", "*"): "shown"}
    # A withheld 5 beside a "< 5" of 1: 6 is 5 + 1 or 6 + 0 to a reader, so nothing more goes.
    values = {("t", "*"): 17, ("a", "*"): 1, ("b", "*"): 5, ("c", "*"): 11}
    state = o.suppress(values, [o.Line(("t", "*"), (("a", "*"), ("b", "*"), ("c", "*")))])
    assert state[("a", "*")] == "small" and state[("b", "*")] == "withheld" and state[("c", "*")] == "shown"
    # A withheld cell that a second line gives away protects nothing: that line loses a cell too.
    values = {("t", "A"): 12, ("a", "A"): 2, ("b", "A"): 10, ("b", "*"): 16, ("b", "B"): 6}
    state = o.suppress(values, [o.Line(("t", "A"), (("a", "A"), ("b", "A"))),
                                o.Line(("b", "*"), (("b", "A"), ("b", "B")))])
    assert state[("b", "A")] == "withheld" and state[("b", "B")] == "withheld" and state[("b", "*")] == "shown"
    # Two "< 5" that add up to 8 are both 4: pinned, so a third cell is withheld.
    # (A zero of its own is not protected: nobody is in it.)
    values = {("t", "*"): 18, ("a", "*"): 4, ("b", "*"): 4, ("c", "*"): 10}
    state = o.suppress(values, [o.Line(("t", "*"), (("a", "*"), ("b", "*"), ("c", "*")))])
    assert state[("c", "*")] == "withheld"


def _interval(value: str) -> tuple[float, float]:
    """What a reader knows of a published count."""
    if value == "< 5":
        return 0.0, 4.0
    if value == "withheld":
        return 5.0, math.inf
    return float(value), float(value)


def _pinned(total: str, parts: list[str]) -> list[int]:
    """Indices of the "< 5" parts a reader pins to one value from the published total and parts,
    worked out from the CSV alone (and the total, when it is itself "< 5")."""
    pinned = []
    t_lo, t_hi = _interval(total)
    bounds = [_interval(p) for p in parts]
    for i, p in enumerate(parts):
        if p != "< 5":
            continue
        others_lo = sum(b[0] for j, b in enumerate(bounds) if j != i)
        others_hi = sum(b[1] for j, b in enumerate(bounds) if j != i)
        lo, hi = max(0.0, t_lo - others_hi), min(4.0, t_hi - others_lo)
        if lo >= hi and hi > 0:
            pinned.append(i)
    return pinned


@pytest.mark.parametrize("seed", range(25))
def test_no_suppressed_count_can_be_worked_out_from_the_csv(seed):
    """PAT-PRIVACY: for random small networks, every line of the CSV (a site's referred = its
    statuses, its lost = the reasons, and the network's figure = the sites' figures) leaves each
    "< 5" holding patients at two values or more, and no count under 5 is ever written as a number."""
    import random

    rng = random.Random(seed)
    records, n = [], 0
    for site in ("BCN", "LIS", "MAD", "MUC")[: rng.randint(2, 4)]:
        for _ in range(rng.randint(1, 25)):
            n += 1
            kind = rng.choice(["infused"] * 5 + ["booked", "lost", "ineligible", "withdrawn"])
            records.append(rec(n, site, stage=kind, infused=30.0 if kind == "infused" else None,
                               lost_reason=rng.choice(o.LOST_REASONS) if kind == "lost" else "",
                               response_day100=rng.choice(["CR", "PR", "SD", "PD", ""]) if kind == "infused" else "",
                               max_crs_grade=rng.choice([0, 1, 2, 3, 4]), region=rng.choice(["R1", "R2", ""]),
                               deprivation_quintile=rng.choice([1, 2, 3, 4, 5, None])))
    result = o.outcomes(records)
    out = io.StringIO()
    csv.writer(out).writerows(o.csv_rows(result))
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    published = {(s, g, m): v for s, g, m, v, *_ in rows[1:]}
    sites = sorted({r.site for r in records})
    statuses = ["treated", "waiting", "ineligible", "withdrawn", "lost"]
    lines = []
    for g in [*sites, "Network"]:
        lines.append((published[("pathway", g, "referred")], [published[("pathway", g, s)] for s in statuses]))
        lines.append((published[("pathway", g, "lost")], [published[("lost", g, r)] for r in o.LOST_REASONS]))
    for s in ["referred", *statuses]:
        lines.append((published[("pathway", "Network", s)], [published[("pathway", g, s)] for g in sites]))
    for r in o.LOST_REASONS:
        lines.append((published[("lost", "Network", r)], [published[("lost", g, r)] for g in sites]))
    for m in ("crs_grade3plus", "icans_grade3plus"):
        lines.append((published[("safety", "Network", m)], [published[("safety", g, m)] for g in sites]))
    for section in ("region", "deprivation_quintile"):
        groups = sorted({g for s, g, _ in published if s == section})
        lines.append((published[("pathway", "Network", "referred")], [published[(section, g, "referred")] for g in groups]))
        lines.append((published[("pathway", "Network", "treated")], [published[(section, g, "treated")] for g in groups]))
    for total, parts in lines:
        assert not _pinned(total, parts), (total, parts)
    # No small count appears as a number anywhere a count is written.
    for (section, group, measure), value in published.items():
        if value.isdigit() and section not in ("times",) and "travel" not in measure:
            assert int(value) >= 5, (section, group, measure, value)


# --- The page -------------------------------------------------------------------------------------------

def _referrals(people, count: int, site: str = "MAD", *, treated: int = 0, start: int = 0) -> list:
    """``count`` referrals of new patients at ``site`` (through the services), the first ``treated``
    of them infused 40 days after referral with a day-100 CR and CRS grade 3 (ORM, as follow-up records)."""
    from pocare.network.models import Site
    from pocare.patients.identity import Identity
    from pocare.patients.models import AdverseEvent, Referral, Visit, VisitStatus
    from pocare.patients.services import patient_register, referral_create
    from tests.custody.helpers import effective_at

    physician = people[f"physician.{site.lower()}"]
    product = effective_at(site).product
    made = []
    for i in range(count):
        patient = patient_register(actor=physician, treating_site=Site.objects.get(code=site),
                                   identity=Identity(name=f"Patient {start + i}"), region="ES300",
                                   travel_minutes=20 + i, deprivation_quintile=3)
        referral = referral_create(actor=physician, patient=patient, product=product, indication="r/r LBCL",
                                   weight_kg=Decimal("70"))
        if i < treated:
            infused = referral.referred_at + dt.timedelta(days=40)
            Referral.objects.filter(pk=referral.pk).update(stage=Stage.FOLLOW_UP, infused_at=infused)
            Visit.objects.create(referral=referral, label="Day 100", day=100, due_on=(infused + dt.timedelta(days=100)).date(),
                                 status=VisitStatus.DONE, response="CR", alive=True)
            AdverseEvent.objects.create(referral=referral, kind="crs", onset_on=infused.date(), grade=3,
                                        recorded_by=physician, recorded_at=infused)
        made.append(referral)
    return made


@pytest.mark.django_db
def test_page_shows_the_network_and_own_site_only(client, login, people):
    """PAT-PRIVACY: Madrid's physician sees Madrid's row and the network's, not Lisbon's; Control
    Site QA sees every site; an operator, who does not hold the view, is refused."""
    _referrals(people, 6, "MAD", treated=6)
    _referrals(people, 7, "LIS", treated=7, start=100)
    login("physician.mad")
    page = client.get("/patients/outcomes/")
    assert page.status_code == 200
    rows = dict(page.context["rows"])
    assert set(rows) == {"MAD", "Network"}
    assert rows["MAD"].treated.number == 6 and rows["Network"].referred.number == 13
    assert rows["Network"].crs3.number == 13 and rows["Network"].crs3_rate.share == pytest.approx(1.0)
    assert ">LIS<" not in page.content.decode()
    data = list(csv.reader(io.StringIO(client.get("/patients/outcomes/csv/").content.decode())))
    assert {row[3] for row in data[1:] if row[2] == "pathway"} == {"MAD", "Network"}
    client.logout()
    login("planner")
    assert 'href="/patients/outcomes/"' in client.get("/").content.decode()  # in the navigation
    client.logout()
    login("qa")
    assert {label for label, _ in client.get("/patients/outcomes/").context["rows"]} == {"LIS", "MAD", "Network"}
    client.logout()
    login("operator.mad")
    assert client.get("/patients/outcomes/").status_code == 403
    assert client.get("/patients/outcomes/csv/").status_code == 403


@pytest.mark.django_db
def test_csv_is_the_pages_figures_suppressed_alike(client, login, people):
    """PAT-PRIVACY: the CSV holds the page's figures: Lisbon's 3 referrals are "< 5" in both,
    the number 3 in neither."""
    _referrals(people, 8, "MAD", treated=6)
    _referrals(people, 3, "LIS", treated=1, start=100)
    login("qa")
    page = client.get("/patients/outcomes/")
    rows = dict(page.context["rows"])
    assert rows["LIS"].referred.text == "< 5"
    response = client.get("/patients/outcomes/csv/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    data = list(csv.reader(io.StringIO(response.content.decode())))
    assert data[0][:6] == ["period_start", "period_end", "section", "group", "measure", "value"]
    published = {(s, g, m): v for _start, _end, s, g, m, v, *_ in data[1:]}
    assert published[("pathway", "LIS", "referred")] == "< 5"
    assert published[("pathway", "MAD", "referred")] == rows["MAD"].referred.text
    assert published[("pathway", "Network", "referred")] == "11"
    # Network − Madrid would give Lisbon: Madrid's count is withheld too.
    assert published[("pathway", "MAD", "referred")] == "withheld"


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["start=2026-13-01", "start=0001-01-01", "end=9999-12-31",
                                   "start=2026-05-01&end=2026-04-01", "start=2026-01-01%00"])
def test_a_bad_period_is_refused_with_a_message(client, login, query):
    """Hostile input: an impossible, year-1/9999, inverted or NUL-bearing period is a 400 naming the fault."""
    login("qa")
    assert client.get(f"/patients/outcomes/?{query}").status_code == 400
    assert client.get(f"/patients/outcomes/csv/?{query}").status_code == 400


@pytest.mark.django_db
def test_the_period_filters_by_referral_date(client, login, people):
    """Referrals outside the period are not counted."""
    from pocare.patients.models import Referral

    made = _referrals(people, 6, "MAD")
    Referral.objects.filter(pk=made[0].pk).update(referred_at=timezone.now() - dt.timedelta(days=1000))
    login("qa")
    today = timezone.now().date()
    page = client.get(f"/patients/outcomes/?start={today - dt.timedelta(days=30)}&end={today}")
    assert page.context["o"].network.referred.number == 5


@pytest.mark.django_db
def test_the_page_costs_the_same_queries_at_two_sizes(client, login, people):
    """The page reads its records in a fixed number of queries, whatever the referrals."""
    _referrals(people, 5, "MAD", treated=2)
    login("qa")
    client.get("/patients/outcomes/")
    with CaptureQueriesContext(connection) as small:
        assert client.get("/patients/outcomes/").status_code == 200
    _referrals(people, 12, "LIS", treated=7, start=100)
    with CaptureQueriesContext(connection) as large:
        page = client.get("/patients/outcomes/")
    assert page.context["o"].network.referred.number == 17
    assert len(large.captured_queries) == len(small.captured_queries)


# --- Planning's demand -----------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_live_twin_counts_the_patients_referred(people):
    """Issue 15/17: the twin's demand is the patients referred (each one a referral, not ÷ the
    eligible share, since they are counted before eligibility), extrapolated to a year."""
    from pocare.patients.models import Referral
    from pocare.planning import live

    made = _referrals(people, 4, "MAD")
    Referral.objects.filter(pk__in=[r.pk for r in made]).update(
        referred_at=timezone.now() - dt.timedelta(days=60))
    counts, days = live.observed_referrals()
    assert sum(counts.values()) == 0 and days == pytest.approx(60, abs=0.1)
    assert live.observed_patients() == {"MAD": 4}
    per_site, words = live._referrals([{"code": "MAD", "units": 2}, {"code": "LIS", "units": 1}], None, 365, 0.85)
    assert per_site == {"MAD": pytest.approx(4 * 365 / 60, rel=0.01), "LIS": 0.0}
    assert "4 patients referred" in words and "0 orders placed without a referral" in words
