"""Planning that does not mislead by default (issue 15): existing sites outside the region do not
count against p; the map has coastlines and borders from the shipped Natural Earth lines; output
files are checked before the work; a low share treated comes with the reason; the local Dask
cluster is quiet and serves no dashboard."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from pocare.planning import basemap, demand, diagnosis, plots, replications, report, study, twin

ROOT = Path(__file__).resolve().parents[2]
MADRID = {"name": "Madrid site", "code": "MAD", "latitude": 40.4165, "longitude": -3.70256, "units": 2}
LISBON = {"name": "Lisbon site", "code": "LIS", "latitude": 38.71667, "longitude": -9.13333, "units": 2}
MUNICH = {"name": "Munich site", "code": "MUC", "latitude": 48.13743, "longitude": 11.57549, "units": 2}


def test_a_site_is_in_the_region_of_its_nearest_city():
    assert demand.in_region("ES", 40.4165, -3.70256)
    assert not demand.in_region("ES", 38.71667, -9.13333)
    assert demand.in_region("ES,PT", 38.71667, -9.13333)
    assert demand.in_region("EU", 48.13743, 11.57549)
    assert demand.in_region("US-CA", 34.05, -118.24) and not demand.in_region("US-CA", 40.7, -74.0)


@pytest.mark.parametrize("model", ["mclp", "capacitated"])
def test_existing_sites_outside_the_region_do_not_count_against_p(model):
    params = {"region": "PT", "model": model, "max_points": 60, "max_candidates": 15, "time_limit": 20,
              "existing": [MADRID, MUNICH, LISBON]}
    result = study.plan_study({**params, "p": 2})
    chosen = result["sites"]
    assert {s["code"] for s in chosen if s["existing"]} == {"MAD", "MUC", "LIS"}
    assert sum(1 for s in chosen if s["in_region"]) == 2  # Lisbon and one new site: p = 2 in Portugal
    assert sorted(result["outside_fixed"]) == ["Madrid site", "Munich site"]
    assert "do not count against p" in report.plan_body(result)
    assert "yes, outside the region" in report.plan_body(result)
    one = study.plan_study({**params, "p": 1})
    assert [s["code"] for s in one["sites"] if s["in_region"]] == ["LIS"]
    with pytest.raises(ValueError, match=r"^p: 1 existing sites in PT stay open \(LIS\), more than p = 0"):
        study.plan_study({**params, "p": 0})


def test_the_shipped_map_lines_are_natural_earth_and_small():
    data = json.loads(basemap.DATA.read_text(encoding="utf-8"))
    assert "Natural Earth" in data["source"] and "public domain" in data["source"]
    assert basemap.DATA.stat().st_size < 500_000
    lines = basemap.lines()
    assert len(lines["coastline"]) > 500 and len(lines["border"]) > 100
    every = [p for kind in lines.values() for line in kind for p in line]
    assert all(-180 <= lon <= 180 and -90 <= lat <= 90 for lon, lat in every)


def test_the_map_draws_coastlines_and_borders_where_the_points_are():
    points = [{"name": "Madrid", "latitude": 40.42, "longitude": -3.70, "patients": 20, "minutes": 30},
              {"name": "Sevilla", "latitude": 37.39, "longitude": -5.98, "patients": 5, "minutes": 150},
              {"name": "Vigo", "latitude": 42.24, "longitude": -8.72, "patients": 4, "minutes": 250}]
    svg = plots.network_map(points, [], [MADRID, LISBON])
    assert 'class="map-coastline"' in svg and 'class="map-border"' in svg
    assert "Natural Earth" in svg
    # the map fits the region: a site far outside it (Munich, planning Iberia) is not drawn
    far = plots.network_map(points, [{**MUNICH, "existing": True, "in_region": False}], [MADRID, MUNICH])
    assert "Madrid site" in far and "Munich site" not in far
    # the Spanish–Portuguese border lies in this window; the middle of the Atlantic has no line
    assert basemap.path_d("border", basemap.Box(-8.0, 38.0, -6.5, 42.0), lambda lon, lat: (lon, lat))
    assert not basemap.path_d("coastline", basemap.Box(-40.0, 30.0, -35.0, 35.0), lambda lon, lat: (lon, lat))
    # a line leaving the window keeps its first point outside, so it reaches the edge
    runs = basemap.clip(((0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (5.0, 5.0)), basemap.Box(0.5, 0.5, 3.0, 3.0))
    assert runs == [((0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (5.0, 5.0))]


@pytest.mark.parametrize("command", ["plan", "twin"])
def test_an_unwritable_output_is_refused_before_the_work(command, tmp_path, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("the study ran before the output was checked")

    monkeypatch.setattr(study, "plan_study", no_work)
    monkeypatch.setattr(study, "twin_study", no_work)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for option, path in (("--out", a_file / "report.html"), ("--out", tmp_path), ("--json", tmp_path / "no" / "x")):
        args = [command, "--out", str(tmp_path / "ok.html"), option, str(path)]
        with pytest.raises(CommandError, match=f"^{option}: ") as caught:
            call_command(*args, stdout=io.StringIO())
        assert caught.value.returncode == 2
    assert not (tmp_path / "ok.html").exists()


def test_an_unwritable_output_exits_2_from_the_command_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "POCARE_VAR_DIR": str(tmp_path), "DATABASE_URL": ""}
    done = subprocess.run([sys.executable, "-m", "pocare.cli", "plan", "--out", str(tmp_path / "no" / "plan.html")],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 2
    assert "--out: cannot write" in done.stderr and "Traceback" not in done.stderr


def test_a_low_share_treated_says_which_constraint_binds():
    short = twin.synthetic_network(sites=2, referrals_per_year=3000, units_per_site=1)
    results = replications.run_replications(short, 2, seed=3, scheduler=replications.IN_PROCESS)
    why = diagnosis.explain(replications.summarize(results), short)
    assert why["low"] and why["binding"] == "lost_waiting"
    assert why["text"].startswith("Only ") and "manufacturing capacity binds" in why["text"]
    assert why["eligible_per_year"] == pytest.approx(3000 * 0.85, rel=0.1)
    assert sum(why["shares"].values()) == pytest.approx(1.0)
    ample = twin.synthetic_network(sites=2, referrals_per_year=40, units_per_site=4)
    fine = diagnosis.explain(replications.summarize(
        replications.run_replications(ample, 2, seed=3, scheduler=replications.IN_PROCESS)), ample)
    assert not fine["low"] and fine["shares"]["lost_waiting"] < 0.02


def test_the_twin_report_and_command_warn_and_name_the_demand(tmp_path):
    out = io.StringIO()
    call_command("twin", "--sites", "2", "--units-per-site", "1", "--referrals", "3000", "--replications", "1",
                 "--horizon-days", "120", "--scheduler", "in-process", "--out", str(tmp_path / "t.html"), stdout=out)
    text = out.getvalue()
    assert "Demand: 3,000 referrals a year over a synthetic network of 2 sites" in text
    assert "Warning — baseline: Only" in text and "manufacturing capacity binds" in text
    assert "class=low-share" in (tmp_path / "t.html").read_text(encoding="utf-8")


def _status(link: str) -> int:
    try:
        with urllib.request.urlopen(link, timeout=20) as answer:  # noqa: S310 - the local cluster's own URL
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_the_local_cluster_serves_a_dashboard_only_when_asked():
    with replications._client(None, None) as client:
        assert ":8787" not in client.dashboard_link and _status(client.dashboard_link) == 404
        assert client.submit(sum, [1, 2]).result() == 3
    with replications._client(None, "127.0.0.1:0") as client:
        assert _status(client.dashboard_link) == 200


def test_pocare_twin_prints_no_cluster_logs_unless_asked(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "POCARE_VAR_DIR": str(tmp_path), "DATABASE_URL": ""}
    env.pop(replications.CLUSTER_LOG_ENV, None)
    args = [sys.executable, "-m", "pocare.cli", "twin", "--sites", "2", "--referrals", "50", "--replications", "2",
            "--horizon-days", "30", "--out", str(tmp_path / "twin.html")]
    quiet = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300, check=True)
    assert quiet.stderr == "" and "Report:" in quiet.stdout
    assert len(quiet.stdout.splitlines()) < 20
    told = subprocess.run([*args, "-v", "2"], capture_output=True, text=True, env=env, timeout=300, check=True)
    assert "Scheduler at" in told.stderr
