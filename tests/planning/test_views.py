"""The planner's pages: starting a run records it in the ledger (network chain) and the run page polls
until done, then shows the tables, the SVG map and the plots; bad input is a 400 naming the field;
only the planner or Control Site QA start runs."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from pocare.jobs.models import Job
from pocare.ledger.models import NETWORK_CHAIN, Event
from pocare.planning import services
from pocare.planning.events import PlanningEvent
from pocare.planning.models import PlanningRun, RunStatus

pytestmark = pytest.mark.django_db

PLAN = {"region": "PT", "model": "mclp", "p": "3", "cover_minutes": "120", "indications": ["lbcl"],
        "candidates": "cities", "max_candidates": "30", "hospitals": "", "include_network": "on",
        "max_points": "200", "min_population": "15000", "equity_strength": "0.5", "circuity": "1.3",
        "speed_kmh": "60", "units_per_new_site": "2", "time_limit": "10"}
TWIN = {"source": "synthetic", "scenario": "outage", "sites": "4", "referrals_per_year": "300",
        "units_per_site": "2", "site": "", "hub": "", "units": "0", "start_day": "30", "days": "30", "weeks": "4",
        "material": "lentiviral vector", "replications": "2", "seed": "3", "horizon_days": "120"}


def test_planner_starts_a_plan_run_and_sees_the_result(login, people, monkeypatch, django_capture_on_commit_callbacks):
    client = login("planner")
    assert client.get("/planning/plan/new/").status_code == 200
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post("/planning/plan/new/", PLAN)
    assert response.status_code == 302
    run = PlanningRun.objects.get()
    assert run.status == RunStatus.QUEUED and run.parameters["region"] == "PT" and not callbacks
    job = Job.objects.get()  # queued in the start's own transaction (pocare.jobs), not after it
    assert job.task == "pocare.planning.services.planning_run_work" and job.kwargs == {"run_id": run.pk}
    started = Event.objects.get(event_type=PlanningEvent.RUN_STARTED)
    assert started.chain == NETWORK_CHAIN and started.actor_username == "planner"
    fragment = client.get(f"/planning/runs/{run.pk}/", HTTP_HX_REQUEST="true")
    assert 'hx-trigger="every 1s"' in fragment.content.decode()
    services.planning_run_execute(run=run)  # what the job does
    run.refresh_from_db()
    assert run.status == RunStatus.DONE and run.progress == 100 and run.finished_at
    finished = Event.objects.get(event_type=PlanningEvent.RUN_FINISHED)
    assert finished.chain == NETWORK_CHAIN
    assert Event.objects.get(event_type=PlanningEvent.RUN_RUNNING).id < finished.id
    page = client.get(f"/planning/runs/{run.pk}/").content.decode()
    assert "<svg" in page and "Access before" in page and "HiGHS" in page and "every 1s" not in page
    report = client.get(f"/planning/runs/{run.pk}/report/")
    assert report.status_code == 200 and b"<!doctype html>" in report.content
    assert str(run.pk) in client.get("/planning/").content.decode()


def test_a_twin_run_in_process(login, people):
    run = services.planning_run_start(actor=people["planner"], kind="twin", background=False,
                                      parameters={k: (int(v) if v.isdigit() else v) for k, v in TWIN.items()
                                                  if k != "source"} | {"network": None})
    run.refresh_from_db()
    assert run.status == RunStatus.DONE, run.error
    names = [s["name"] for s in run.result["scenarios"]]
    assert names == ["baseline", "outage"]
    client = login("qa")
    page = client.get(f"/planning/runs/{run.pk}/").content.decode()
    assert "vein-to-vein" in page and "<polyline" in page


def test_the_twin_form_starts_a_run(login, django_capture_on_commit_callbacks):
    client = login("planner")
    assert client.get("/planning/twin/new/").status_code == 200
    with django_capture_on_commit_callbacks(execute=False):
        assert client.post("/planning/twin/new/", TWIN).status_code == 302
    assert PlanningRun.objects.get().kind == "twin"


@pytest.mark.parametrize(("field", "value", "url", "data"), [
    ("region", "XX", "/planning/plan/new/", PLAN), ("p", "0", "/planning/plan/new/", PLAN),
    ("circuity", "9", "/planning/plan/new/", PLAN), ("hospitals", "Clinic,abc,1", "/planning/plan/new/", PLAN),
    ("replications", "0", "/planning/twin/new/", TWIN), ("scenario", "moon", "/planning/twin/new/", TWIN),
    ("site", "NOPE", "/planning/twin/new/", TWIN),
])
def test_bad_input_is_a_400_naming_the_field(login, field, value, url, data):
    client = login("planner")
    payload = {**data, field: value}
    if field == "site":
        payload["scenario"] = "units"
    response = client.post(url, payload)
    assert response.status_code == 400
    html = response.content.decode()
    assert f'id="id_{field}_error"' in html
    assert not PlanningRun.objects.exists()


def test_a_run_begins_its_work_once_with_its_event(people, django_capture_on_commit_callbacks):
    """P11-10e DI-ALCOA: the move of a queued run to running is a service with its ledger event (the
    planning system, network chain, old and new status); a run that is not queued is refused and
    nothing more is recorded."""
    with django_capture_on_commit_callbacks(execute=False):  # no worker runs the job
        run = services.planning_run_start(actor=people["planner"], kind="plan", parameters={"region": "PT"})
    services.planning_run_begin(run=run)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    running = Event.objects.get(event_type=PlanningEvent.RUN_RUNNING, object_id=str(run.pk))
    assert running.chain == NETWORK_CHAIN and running.actor is None and running.actor_username
    assert '"queued"' in running.old_values and '"running"' in running.new_values
    with pytest.raises(ValidationError, match="only a queued run"):
        services.planning_run_begin(run=run)
    assert Event.objects.filter(event_type=PlanningEvent.RUN_RUNNING).count() == 1


@pytest.mark.parametrize("username", ["qp", "inspector"])
def test_only_planner_or_qa_start_runs(login, people, username):
    client = login(username)
    assert client.get("/planning/").status_code == 200
    assert client.post("/planning/plan/new/", PLAN).status_code == 403
    with pytest.raises(PermissionDenied):
        services.planning_run_start(actor=people[username], kind="plan", parameters={"region": "PT"})
    assert not PlanningRun.objects.exists()


def test_site_people_see_no_planning(login):
    client = login("operator.mad")
    assert client.get("/planning/").status_code == 403
