"""The business case page (COST-BATCH; issue 18, "Cost"): for those who read costs (the planner, Control Site QA;
a site's manager for their own site), on the cost model in force, with its CSV; hostile input refused with a 400
naming the field. A batch planned from the master file compared with a completed batch's cost from its records."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pytest

from pocare.costs import selectors as cost_selectors
from pocare.demo import costs as demo_costs
from pocare.manufacturing.models import MaterialUse, QcResult
from pocare.planning import business
from tests.costs import helpers as c
from tests.manufacturing import helpers as h

pytestmark = pytest.mark.django_db

URL = "/planning/business-case/"


@pytest.fixture
def world(people: Any) -> Any:
    v1 = h.world()
    model = c.approved(demo_costs.content([v1]))
    return v1, model


def test_the_planner_sees_the_case_on_the_model_in_force_with_its_inputs_and_the_twin(world: Any, login: Any):
    """COST-BATCH: the page names the model version and the master-file version used, draws the cost per patient
    with the centralized price, lists every input as an estimate or with its source, and prices the twin's
    decentralized and centralized networks on the same model."""
    _, model = world
    page = login("planner").get(URL, {"site": "MAD", "patients_max": "40"})
    assert page.status_code == 200
    text = page.content.decode()
    assert f"v{model.number}" in text and "<svg" in text and "centralized price" in text
    assert "estimate" in text and "Kymriah UK list price" in text and "Break-even" in text
    assert "decentralized" in text and "centralized" in text and "capital.depreciation_years" in text


def test_the_csv_has_one_row_per_volume(world: Any, login: Any):
    """COST-BATCH: ``export=csv`` gives every volume, its cost per patient falling as it grows."""
    response = login("qa").get(URL, {"site": "LIS", "patients_max": "25", "export": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "business-case-LIS-model-v1" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [int(r["patients_per_year"]) for r in rows] == list(range(1, 26))
    assert Decimal(rows[0]["per_patient_eur"]) > Decimal(rows[-1]["per_patient_eur"])


def test_who_reads_the_case_and_of_which_site(world: Any, login: Any):
    """COST-BATCH P11-10g: those without ``costs.view`` are refused; a site's manager reads their own site's case
    and another site is refused naming the field (it is not among the choices)."""
    assert login("operator.mad").get(URL).status_code == 403
    manager = login("manager.mad")
    assert manager.get(URL).status_code == 200
    assert manager.get(URL, {"site": "MAD"}).status_code == 200
    other = manager.get(URL, {"site": "LIS"})
    assert other.status_code == 400 and "Select a valid choice" in other.content.decode()


@pytest.mark.parametrize(("field", "value", "label"), [
    ("site", "M\x00AD", "Site"), ("patients_max", "9" * 400, "Patients a year"), ("patients_max", "0", "Patients"),
    ("failure_rate", "NaN", "Failure rate"), ("failure_rate", "1", "Failure rate"),
    ("process_days", "-1", "Process days"), ("process_days", "1e400", "Process days"),
    ("max_wait_days", "0", "Longest mean wait"), ("twin_sites", "100000", "Twin: sites"),
])
def test_hostile_input_is_refused_naming_the_field(world: Any, login: Any, field: str, value: str, label: str):
    """COST-BATCH: NUL, a 400-digit number, zero, NaN, a failure rate of 1 or a negative duration: a 400 naming the
    field — the form's error next to its label, or (NUL, 400 digits, 1e400) the request's refusal before any view."""
    response = login("planner").get(URL, {"site": "MAD", field: value})
    assert response.status_code == 400
    text = response.content.decode()
    assert f"Field <strong>{field}</strong>" in text or (label in text and "field-error" in text), text


def test_a_planned_batch_is_of_the_order_of_a_completed_batchs_cost_from_its_records(world: Any):
    """COST-BATCH: the same model prices a batch planned from the master file and a completed batch from its
    records: materials and QC agree (the bill and the specification are what the record consumed and tested),
    the total is of the same order; labour differs — the plan prices each step's expected hands-on minutes,
    the record the minutes between a step's start and its performance."""
    from tests.release.helpers import completed_batch  # lint: allow - loads the release helpers only here

    v1, model = world
    batch = completed_batch("MAD")
    actual = cost_selectors.batch_cost(batch)
    assert actual is not None and actual.model == model
    days = actual.records.unit_hours / 24
    planned = business.variable_cost(v1.content, model.content, site_code="MAD", device_type=batch.unit.device_type,
                                     process_days=days, shipments=len(actual.records.shipments))
    got = {key: subtotal for key, _, subtotal, _ in actual.sheet.subtotals()}
    plan = {key: subtotal for key, _, subtotal, _ in planned.subtotals()}
    assert Decimal("0.5") < planned.total / actual.sheet.total < 2, (plan, got)
    assert plan["equipment"] == got["equipment"] and plan["facility"] == got["facility"]
    assert plan["review"] == got["review"]
    used = set(MaterialUse.objects.filter(step__batch=batch).values_list("material_code", flat=True))
    assert used <= {line.description.split(" ")[0] for line in planned.lines if line.category == "materials"}
    tested = set(QcResult.objects.filter(batch=batch).values_list("attribute_id", flat=True))
    assert tested <= {line.description.removeprefix("QC test ") for line in planned.lines if line.category == "qc"}
    assert plan["labour"] != got["labour"]


def test_a_twin_studys_centralized_scenario_is_priced_on_the_model_next_to_the_baseline(world: Any, login: Any,
                                                                                          people: Any):
    """COST-BATCH: the run page of a twin study (baseline against centralized) adds, for those who read costs,
    each scenario priced with the cost model in force — the same model as the batches and the business case."""
    from pocare.planning import services  # lint: allow - the run's service, as tests/planning/test_views.py

    params = {"scenario": "centralized", "sites": 3, "referrals_per_year": 90, "units_per_site": 2, "hub": "",
              "site": "", "units": 0, "start_day": 30, "days": 30, "weeks": 4, "material": "lentiviral vector",
              "replications": 2, "seed": 3, "horizon_days": 120, "network": None}
    run = services.planning_run_start(actor=people["planner"], kind="twin", background=False, parameters=params)
    run.refresh_from_db()
    assert run.status == "done", run.error
    page = login("planner").get(f"/planning/runs/{run.pk}/").content.decode()
    assert "Priced on cost model v1" in page
    priced = page.split("Priced on cost model v1")[1]
    assert "baseline" in priced and "centralized" in priced and "Per patient treated" in priced
