"""Demand from GeoNames cities × incidence × share eligible; equity weights; travel times and a
loaded travel-time matrix; the site-selection study end to end on a small country."""

from __future__ import annotations

import numpy as np
import pytest

from pocare.planning import demand, study, travel


def test_patients_follow_incidence_and_eligibility():
    # Europe uses HAEMACARE 3.13 per 100,000 for LBCL; the US SEER 5.6 (DOMAIN.md)
    assert demand.patients_per_year(1_000_000, "ES", ["lbcl"]) == pytest.approx(31.3 * 0.30)
    assert demand.patients_per_year(1_000_000, "US", ["lbcl"], {"lbcl": 1.0}) == pytest.approx(56.0)
    assert demand.patients_per_year(100_000, "ES", ["lbcl", "myeloma"], {"lbcl": 1, "myeloma": 1}) == \
        pytest.approx(3.13 + 4.62)
    with pytest.raises(ValueError, match=r"^indications:"):
        demand.patients_per_year(1, "ES", ["flu"])


def test_cities_of_a_region():
    es = demand.demand_points("ES")
    assert len(es) > 100 and es[0].name == "Madrid"
    assert all(p.country == "ES" and p.population >= 15_000 for p in es)
    assert {p.country for p in demand.demand_points("ES,PT")} == {"ES", "PT"}
    ca = demand.demand_points("US-CA")
    assert ca and all(p.region == "US-CA" for p in ca)
    for bad in ("", "XX", "ZZ-1"):
        with pytest.raises(ValueError, match=r"^region:"):
            demand.cities(bad)


def test_equity_weight_raises_people_far_from_centres(tmp_path):
    pts = demand.demand_points("PT", limit=3)
    out = demand.equity_weighted(pts, [0.0, 60.0, 300.0], strength=1.0)
    assert [p.weight / p.patients for p in out] == pytest.approx([1.0, 1.5, 2.0])
    csv = tmp_path / "dep.csv"
    csv.write_text(f"region,index\n{pts[0].region},10\nPT-XX,0\n")
    dep = demand.load_deprivation(csv)
    assert dep[pts[0].region] == 1.0
    again = demand.equity_weighted(pts, None, strength=0, deprivation=dep, deprivation_strength=0.5)
    assert again[0].weight == pytest.approx(pts[0].patients * 1.5)


def test_travel_minutes_and_a_loaded_matrix(tmp_path):
    # Madrid → Barcelona ≈ 505 km great circle
    km = travel.great_circle_km([40.4168], [-3.7038], [41.3874], [2.1686])[0, 0]
    assert km == pytest.approx(505, abs=5)
    minutes = travel.TravelModel(circuity=1.2, speed_kmh=80).minutes([40.4168], [-3.7038], [41.3874], [2.1686])
    assert minutes[0, 0] == pytest.approx(km * 1.2 / 80 * 60)
    with pytest.raises(ValueError, match=r"^circuity:"):
        travel.TravelModel(circuity=0.5)
    f = tmp_path / "m.csv"
    f.write_text("origin,destination,minutes\na,x,10\na,y,20\nb,x,30\nb,y,40\n")
    assert travel.matrix_from_csv(f, ["a", "b"], ["x", "y"]).tolist() == [[10, 20], [30, 40]]
    f.write_text("origin,destination,minutes\na,x,10\n")
    with pytest.raises(ValueError, match="no time for"):
        travel.matrix_from_csv(f, ["a", "b"], ["x"])


def test_plan_study_before_and_after():
    lisbon = {"name": "Lisbon hospital", "latitude": 38.72, "longitude": -9.14, "units": 2}
    r = study.plan_study({"region": "PT", "p": 3, "existing": [lisbon], "max_candidates": 40})
    assert r["solution"]["optimal"] and 0 in r["solution"]["chosen"]  # the existing site is fixed open
    assert r["after"]["patients_2h"] >= r["before"]["patients_2h"]
    assert len(r["sites"]) == 3 and sum(s["load"] for s in r["sites"]) == pytest.approx(r["after"]["patients"])
    assert r["before"]["sites"] == [0]
    assert np.isfinite(r["after"]["p90_minutes"])
