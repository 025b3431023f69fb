"""Supply resilience in the digital twin (issue 18, "Resilience"; SUP-STOCK): a disruption draws on a
site's own kits, then its depot's shared pool, then waits for the delivery after the disruption (its end
plus the lead time); the supply scenario runs with and without the regional buffer on the same seeds;
weeks of autarky per region from the live stock; the live twin reads stock, depots, lead times and sole
suppliers; hostile input is a 400 naming the field."""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pocare.network.models import Site
from pocare.planning import live, study, twin
from pocare.planning.models import PlanningRun
from pocare.supply import autarky, reorder
from pocare.supply import services as supply
from pocare.supply.models import ApprovedSupplier, LocationKind
from tests.manufacturing import helpers as h
from tests.planning.test_views import TWIN
from tests.supply import helpers as s
from tests.supply.test_step import at_count_step, record_count

WEEK = 7.0
ZERO = twin.Dist("fixed", mean=0.0)


def tiny(*, a_kits: float, depot: float | None = None, lead: float = 7.0, weekly_at_b: bool = False,
         start: float = 0.5, weeks: float = 4) -> twin.TwinConfig:
    """Site A (one patient a week, exactly, from day 7) and site B (none, or one a week); nothing else
    takes time but a one-day manufacture; nobody fails or progresses; LV disrupted from ``start``."""
    regions = [twin.RegionSpec("RA", 365 / WEEK, {"A": 0.0})]
    if weekly_at_b:
        regions.append(twin.RegionSpec("RB", 365 / WEEK, {"B": 0.0}))
    cfg = twin.TwinConfig(
        sites=(twin.SiteSpec("A", 5, kits={"LV": a_kits}), twin.SiteSpec("B", 5)), regions=tuple(regions),
        depots=(twin.DepotSpec("D", ("A", "B"), {"LV": depot}),) if depot is not None else (),
        horizon_days=70, drain_days=60, poisson=False, eligible_share=1.0, eligibility=ZERO, apheresis=ZERO,
        handling_hours=0.0, manufacture=twin.Dist("fixed", mean=1.0), abort_rate=0.0, qc=ZERO, oos_rate=0.0,
        infusion=ZERO, progression_per_day=0.0, lead_time_days=lead, sample_limit=100)
    return twin.supply_disruption(cfg, material="LV", start_day=start, weeks=weeks)


def test_two_kits_last_two_weeks_then_batches_wait_for_the_delivery_after_the_disruption():
    """SUP-STOCK: by hand — A starts a batch a week (days 7, 14, … 35); LV is stopped from day 0.5 for 4
    weeks and the first delivery comes 7 days after (day 35.5). With 2 kits the batches of days 7 and 14
    start; those of days 21, 28 and 35 wait until day 35.5 (14.5 + 7.5 + 0.5 days); then all resume."""
    gap = 365 / (365 / WEEK)
    r = twin.simulate(tiny(a_kits=2), seed=1)
    assert (r["kits_site"], r["kits_depot"], r["delayed_supply"], r["lost_supply"]) == (2, 0, 3, 0)
    assert r["supply_wait_days"] == pytest.approx(sum(35.5 - k * gap for k in (3, 4, 5)))
    assert r["treated"] == r["referred"]  # every patient treated: after the delivery the site resumes
    # Without the disruption nobody waits; with no lead time the wait ends at the disruption's end (day 28.5).
    assert twin.simulate(replace_disruptions(tiny(a_kits=2)), seed=1)["delayed_supply"] == 0
    no_lead = twin.simulate(tiny(a_kits=2, lead=0.0), seed=1)
    assert (no_lead["delayed_supply"], no_lead["supply_wait_days"]) == (2, pytest.approx(sum(28.5 - k * gap
                                                                                            for k in (3, 4))))


def replace_disruptions(cfg: twin.TwinConfig) -> twin.TwinConfig:
    return replace(cfg, disruptions=())


def test_the_depot_pool_is_shared_first_come_by_the_sites_it_serves():
    """SUP-STOCK: A has 1 kit, B none, the depot 3 for both. A and B each start a batch a week (days 7,
    14, …): A takes its own kit on day 7, B the depot's; on day 14 both draw on the depot (2 more); on day
    21 the one who comes first takes the last kit, the other waits — 4 depot kits would have been 3."""
    r = twin.simulate(tiny(a_kits=1, depot=3, weekly_at_b=True), seed=1)
    assert (r["kits_site"], r["kits_depot"]) == (1, 3)
    starts = 2 * 5  # days 7 … 35 at two sites
    assert r["delayed_supply"] == starts - 4
    emptied = twin.simulate(twin.without_depots(tiny(a_kits=1, depot=3, weekly_at_b=True)), seed=1)
    assert (emptied["kits_depot"], emptied["delayed_supply"]) == (0, starts - 1)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_with_the_buffer_never_worse_than_without_on_the_same_seed(seed):
    """SUP-STOCK: the same disruption met with the depot's stock delays no more patients, loses no more
    and adds no more waiting than with the depots emptied."""
    for a_kits, depot in ((0, 2), (1, 5), (2, 0)):
        cfg = tiny(a_kits=a_kits, depot=depot, weekly_at_b=True)
        with_buffer, without = twin.simulate(cfg, seed), twin.simulate(twin.without_depots(cfg), seed)
        assert with_buffer["delayed_supply"] <= without["delayed_supply"]
        assert with_buffer["supply_wait_days"] <= without["supply_wait_days"]
        assert with_buffer["lost_progression"] <= without["lost_progression"]


class _Recording(twin.Twin):
    """The twin, noting each referral's arrival and its first draws (progression, manufacture time)."""

    def __init__(self, config: twin.TwinConfig, seed: int) -> None:
        super().__init__(config, seed)
        self.seen: list[tuple[str, float, float, float]] = []

    def _refer(self, region: twin.RegionSpec) -> Any:
        journey = super()._refer(region)
        probe = random.Random()
        probe.setstate(journey.rng.getstate())  # what the patient's stream will draw, left untouched
        self.seen.append((region.name, journey.referred, journey.progression, self.c.manufacture.sample(probe)))
        return journey


def noisy(depot: float) -> twin.TwinConfig:
    """Two sites, Poisson referrals, random durations, failures and progression: every draw matters."""
    cfg = replace(tiny(a_kits=1, depot=depot, weekly_at_b=True, weeks=6), poisson=True, eligible_share=0.8,
                  eligibility=twin.Dist("exponential", mean=3.0), manufacture=twin.Dist("triangular", low=8,
                                                                                          mode=10, high=13),
                  qc=twin.Dist("exponential", mean=1.5), abort_rate=0.05, oos_rate=0.05,
                  progression_per_day=0.01, horizon_days=150)
    return replace(cfg, regions=tuple(replace(r, referrals_per_year=365 / 3) for r in cfg.regions))


@pytest.mark.parametrize("seed", [1, 7])
def test_with_and_without_the_buffer_draw_common_random_numbers(seed):
    """SUP-STOCK: the two runs of the supply scenario use common random numbers — on one seed the n-th
    referral of each region arrives at the same moment with the same draws (progression, durations,
    eligibility) with and without the regional buffer, so their difference is the buffer's alone; the
    patients turned away before any kit is drawn (not eligible) are the same ones."""
    cfg = noisy(depot=4)
    runs = []
    for config in (cfg, twin.without_depots(cfg)):
        t = _Recording(config, seed)
        runs.append((t, t.run()))
    (with_twin, with_buffer), (without_twin, without) = runs
    assert with_twin.seen == without_twin.seen and len(with_twin.seen) > 50
    assert (with_buffer["referred"], with_buffer["ineligible"]) == (without["referred"], without["ineligible"])
    assert with_buffer["kits_depot"] > 0 and without["kits_depot"] == 0  # the one thing that differs
    # Another seed draws other numbers: the streams follow the seed.
    other = _Recording(cfg, seed + 1)
    other.run()
    assert other.seen != with_twin.seen


def test_a_patient_progressing_while_the_batch_waits_for_material_is_lost_to_the_disruption():
    """SUP-STOCK: the twin's loss while waiting reused — with a progression hazard, a long disruption
    and no stock, patients are lost waiting for the material, and counted among those lost to progression."""
    cfg = replace(tiny(a_kits=0, weeks=20), progression_per_day=0.05, horizon_days=200)
    r = twin.simulate(cfg, seed=4)
    assert r["lost_supply"] > 0 and r["lost_supply"] <= r["lost_progression"]


def test_stock_round_trips_in_json_and_old_configurations_still_load():
    """SUP-STOCK: kits, depots, lead times and sole suppliers survive the JSON round trip; a configuration
    saved before stock (no such fields) loads with none; bad stock is refused naming what is wrong."""
    cfg = tiny(a_kits=2, depot=3)
    cfg = twin.config_from_dict({**twin.config_to_dict(cfg), "suppliers": {"CDMO": ["LV"]}, "lead_times": {"LV": 21}})
    assert twin.config_from_dict(twin.config_to_dict(cfg)) == cfg and cfg.lead_time("LV") == 21
    old = twin.config_to_dict(twin.synthetic_network(sites=2, referrals_per_year=10))
    for key in ("depots", "lead_time_days", "lead_times", "suppliers"):
        old.pop(key)
    for site in old["sites"]:
        site.pop("kits")
    loaded = twin.config_from_dict(old)
    assert loaded.depots == () and loaded.sites[0].kits == {} and loaded.lead_time_days == 0.0
    bad = twin.config_to_dict(cfg)
    bad["depots"][0]["serves"] = ["NOPE"]
    with pytest.raises(ValueError, match=r"^depot D: serves"):
        twin.config_from_dict(bad)
    bad = twin.config_to_dict(cfg)
    bad["sites"][0]["kits"] = {"LV": -1}
    with pytest.raises(ValueError, match=r"^kits of LV at A"):
        twin.config_from_dict(bad)


def test_the_supply_study_runs_with_and_without_the_buffer_side_by_side():
    """SUP-STOCK: the supply scenario replicates the baseline, the disruption with the depots' stock and
    without it (same seeds) and reports patients delayed, lost and the added wait for both."""
    r = study.twin_study({"scenario": "supply", "sites": 3, "referrals_per_year": 150, "units_per_site": 3,
                          "replications": 2, "horizon_days": 90, "start_day": 10, "weeks": 4, "material": "LV",
                          "kits_per_site": 1, "depot_kits": 4, "lead_time_days": 14})
    assert [x["name"] for x in r["scenarios"]] == ["baseline", study.WITH_BUFFER, study.WITHOUT_BUFFER]
    rows = r["supply"]["rows"]
    assert set(rows) == {study.WITH_BUFFER, study.WITHOUT_BUFFER} and r["supply"]["materials"] == ["LV"]
    assert rows[study.WITHOUT_BUFFER]["kits_depot"] == 0 and rows[study.WITH_BUFFER]["kits_depot"] > 0
    for row in rows.values():
        assert {"delayed_supply", "lost_supply", "supply_wait_mean", "extra_lost"} <= set(row)


@pytest.mark.parametrize(("params", "field"), [
    ({"weeks": 0}, "weeks"), ({"weeks": 105}, "weeks"), ({"weeks": float("nan")}, "weeks"),
    ({"start_day": 400}, "start_day"), ({"start_day": -1}, "start_day"),
    ({"supplier": "Nobody Ltd"}, "supplier"), ({"material": "", "supplier": ""}, "material"),
])
def test_the_study_refuses_a_bad_disruption_naming_the_field(params, field):
    """SUP-STOCK: weeks 1–104, a start day in the horizon, a known supplier; else the field is named."""
    with pytest.raises(ValueError, match=rf"^{field}:"):
        study.twin_config({"scenario": "supply", "sites": 2, "material": "LV", **params})


def test_an_unknown_material_of_a_network_with_stock_is_refused():
    """SUP-STOCK: a network that keeps stock knows its materials: another name is refused, naming them."""
    network = twin.config_to_dict(tiny(a_kits=2, depot=3))
    network["disruptions"] = []
    with pytest.raises(ValueError, match=r"^material: 'GOLD' .*known: LV"):
        study.twin_config({"scenario": "supply", "network": network, "material": "GOLD", "horizon_days": 60})


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value"), [
    ("weeks", "0"), ("weeks", "105"), ("weeks", "1" * 400), ("supplier", "CDMO\x00"), ("start_day", "-5"),
    ("start_day", "200"), ("supplier", "Nobody Ltd"), ("lead_time_days", "366"), ("kits_per_site", "-1"),
])
def test_the_twin_form_refuses_hostile_supply_input_with_a_400_naming_the_field(login, field, value):
    """SUP-STOCK: the supply scenario's inputs refused with a 400 naming the field; nothing is started."""
    client = login("planner")
    response = client.post("/planning/twin/new/", {**TWIN, "scenario": "supply", "material": "LV", field: value})
    assert response.status_code == 400
    html = response.content.decode()
    # NUL and 400-digit numbers are refused before the form by the house's input check, naming the field.
    assert f'id="id_{field}_error"' in html or f"Field <strong>{field}</strong>" in html
    assert not PlanningRun.objects.exists()


# --- live stock, lead times and weeks of autarky -------------------------------------------------------


@pytest.fixture
def region(db):
    """The stock of :func:`make_region`."""
    return make_region()


def make_region():
    """MAD consumes 13 syringes at a step (1 a week over the 13 weeks of history) and keeps 7 in its
    store; the Iberian depot, held by MAD and serving MAD and LIS, 10; LIS 4 in its store and no demand;
    MUC keeps a store of 5 and needs nothing (no depot serves it: a region alone)."""
    batch = at_count_step()
    lot = s.received(20)
    record_count(batch, lot, 13)
    depot = s.store("MAD", "DEPOT-IB", kind=LocationKind.DEPOT, serves=("MAD", "LIS"))
    s.received(10, location=depot)
    s.received(4, site_code="LIS")
    s.received(5, site_code="MUC")
    return depot


def test_weeks_of_autarky_by_hand(region):
    """SUP-STOCK: the depot's region (MAD, LIS and the depot) holds 7 + 4 + 10 = 21 usable syringes and
    needs 13 ÷ 13 = 1 a week: 21.0 weeks, the syringe limiting; MUC alone needs nothing (no weeks)."""
    regions = {r.name: r for r in autarky.regions(user=h.user("qa"))}
    ib = regions["DEPOT-IB"]
    assert (ib.depot, ib.sites, ib.weeks) == ("DEPOT-IB", ("LIS", "MAD"), Decimal("21.0"))
    assert ib.limiting is not None and ib.limiting.material_code == s.SYRINGE
    assert (ib.limiting.stock, ib.limiting.weekly_demand) == (21, 1)
    assert regions["MUC"].sites == ("MUC",) and regions["MUC"].weeks is None
    assert next(iter(regions)) == "DEPOT-IB"  # fewest weeks first, a region needing nothing last


def test_the_autarky_page_for_the_planner_and_qa_only(region, client, login):
    """SUP-STOCK: the network planner and QA read the regions (table and chart) under Network; a site's
    people (another site's manager, an operator) are refused as on every planning page; anonymous is
    sent to sign in."""
    anonymous = client.get("/planning/autarky/")
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    for who in ("planner", "qa"):
        page = login(who).get("/planning/autarky/")
        html = page.content.decode()
        assert page.status_code == 200 and 'id="region-DEPOT-IB"' in html and "<svg" in html
        assert "21.0" in html and 'href="/planning/autarky/"' in html
    for who in ("manager.lis", "operator.mad"):
        assert login(who).get("/planning/autarky/").status_code == 403


def test_the_live_twin_reads_kits_depots_lead_times_and_sole_suppliers(region):
    """SUP-STOCK: the live stock in kits (quantity ÷ the bill's quantity per batch, whole kits), the depot
    as a pool serving its sites, the approved supplier's lead time and the materials it alone supplies."""
    per = live.per_batch()[s.SYRINGE]
    approval = ApprovedSupplier.objects.get(material_code=s.SYRINGE)
    supply.supplier_lead_time_set(actor=h.user("qa"), approval=approval, lead_time_days=28, reason="New contract")
    stock = live.live_stock(["MAD", "LIS"])
    assert stock["kits"]["MAD"][s.SYRINGE] == float(int(7 / per))
    assert stock["kits"]["LIS"][s.SYRINGE] == float(int(4 / per))
    (depot,) = stock["depots"]
    assert (depot.code, depot.serves, depot.kits[s.SYRINGE]) == ("DEPOT-IB", ("LIS", "MAD"), float(int(10 / per)))
    assert stock["lead_times"][s.SYRINGE] == 28.0 and stock["suppliers"]["BD"] == (s.SYRINGE,)
    # The reorder point now covers the 4-week lead time instead of the 2-week constant.
    need = next(n for n in reorder.needs(user=h.user("qa")) if n.site == "MAD" and n.material_code == s.SYRINGE)
    assert need.lead_time_weeks == 4 and need.reorder_point == (need.weekly_demand * 5).to_integral_value("ROUND_CEILING")


@pytest.mark.django_db
@pytest.mark.parametrize("value", [0, 366, -3, True, "14", 14.5])
def test_a_lead_time_outside_1_to_365_whole_days_is_refused_naming_the_field(value):
    """SUP-STOCK: a lead time is a whole number of days from 1 to 365, refused naming ``lead_time_days``."""
    found = s.supplier()
    approval = ApprovedSupplier.objects.get(supplier=found)
    with pytest.raises(ValidationError) as refused:
        supply.supplier_lead_time_set(actor=h.user("qa"), approval=approval, lead_time_days=value, reason="x")
    assert "lead_time_days" in refused.value.message_dict
    approval.refresh_from_db()
    assert approval.lead_time_days == 14
    assert Site.objects.filter(code="MAD").exists()


def test_the_twin_form_names_the_sole_suppliers_and_starts_a_supply_study(region, login):
    """SUP-STOCK: the form lists the live network's sole suppliers with their materials (BD, the syringe),
    and a supply study with a synthetic network's stock starts."""
    client = login("planner")
    assert "BD (SYR-5ML)" in client.get("/planning/twin/new/").content.decode()
    response = client.post("/planning/twin/new/", {**TWIN, "scenario": "supply", "material": "LV",
                                                   "kits_per_site": "2", "depot_kits": "5", "lead_time_days": "14"})
    assert response.status_code == 302
    run = PlanningRun.objects.get()
    assert (run.parameters["scenario"], run.parameters["kits_per_site"], run.parameters["depot_kits"]) == (
        "supply", 2.0, 5.0)


def test_weeks_of_autarky_read_in_a_fixed_number_of_queries(region):
    """SUP-STOCK: another stock-keeping site, its lots and a second depot add no query."""
    qa = h.user("qa")
    autarky.regions(user=qa)  # the person's memberships, read once per request
    with CaptureQueriesContext(connection) as first:
        autarky.regions(user=qa)
    s.received(6, site_code="GRO")
    s.received(3, site_code="MUC")
    s.received(2, location=s.store("LIS", "DEPOT-LIS", kind=LocationKind.DEPOT, serves=("LIS", "GRO")), site_code="LIS")
    with CaptureQueriesContext(connection) as second:
        names = [r.name for r in autarky.regions(user=qa)]
    assert len(second) == len(first) and "GRO" in str([r.sites for r in autarky.regions(user=qa)])
    assert names.count("DEPOT-IB") == 1
