"""A site's business case on the one signed cost model (COST-BATCH; issue 18, "Cost"): capital and fixed figures in
the model, each an estimate or published with its source; a batch planned from the master file × the model's
prices, recomputed by hand; the break-even against the centralized price by hand; the twin's centralized scenario
priced on the same model; the page for those who read costs, its CSV and its refusals."""

from __future__ import annotations

import copy
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from pocare.costs.content import ContentRefused, content_checked
from pocare.demo import costs as demo_costs
from pocare.planning import business

ROLES = ("operator", "qc_analyst", "site_manager", "control_qa", "qp")
DEVICES = ("clinimacs_prodigy", "lonza_cocoon", "other")
DEMO_V1 = Path(__file__).parents[2] / "src/pocare/demo/documents/cd19-cart-v1.yaml"


def checked(content: dict[str, Any]) -> dict[str, Any]:
    return content_checked(content, roles=ROLES, device_types=DEVICES)


#: A small master file: two steps (one optional, left out of a plan), two materials, two QC attributes.
MASTER: dict[str, Any] = {
    "process": {"unit_operations": [{"id": "uo", "steps": [
        {"id": "a", "expected_duration_min": 90, "second_person_verification": True,
         "materials": [{"code": "KIT", "quantity": 1, "unit": "kit"}, {"code": "MEDIUM", "quantity": 3, "unit": "bag"}]},
        {"id": "b", "expected_duration_min": 30, "optional": True,
         "materials": [{"code": "KIT", "quantity": 5, "unit": "kit"}]},
    ]}]},
    "specification": {"attributes": [{"id": "viability"}, {"id": "sterility"}]},
}
SMALL: dict[str, Any] = {
    "currency": "EUR",
    "labour": {"hourly_rates": {"operator": 40, "control_qa": 60, "qp": 100},
               "site_hourly_rates": {"MAD": {"operator": 50}}, "verification_minutes": 6},
    "materials": {"KIT": 1000, "MEDIUM": "12.5"},
    "qc_tests": {"viability": 100, "sterility": 300},
    "facility": {"hourly": 10, "site_hourly": {"MAD": 20}},
    "equipment": {"hourly": {"clinimacs_prodigy": 5}},
    "review": {"qa_hours": 2, "qp_hours": 1},
    "logistics": {"per_shipment": 500, "per_hour": 10},
    "overhead": {"percent": 10},
    "capital": {"unit_price": 100_000, "devices_per_unit": 2, "device_price": {"value": 50_000, "estimate": True},
                "installation": 0, "depreciation_years": 10},
    "fixed": {"staff": 20_000, "rent": {"value": 10_000, "source": "the lease, 2026"}},
    "centralized_price": {"value": 30_000, "source": "a list price"},
}


def test_a_planned_batch_is_the_master_file_times_the_model_recomputed_by_hand():
    """COST-BATCH: labour is each required step's expected minutes at the site's operator rate (the optional step
    is left out) plus the second person's minutes; materials the bill × prices; QC one test per attribute; device
    and cleanroom hours over the process; review hours × the QA and QP rates; two shipments; 10 % overhead."""
    content = checked(SMALL)
    sheet = business.variable_cost(MASTER, content, site_code="MAD", device_type="clinimacs_prodigy",
                                   process_days=Decimal(2))
    by = {key: subtotal for key, _, subtotal, _ in sheet.subtotals()}
    labour = Decimal("1.5") * 50 + Decimal("0.1") * 50  # 90 min + 6 min at MAD's operator rate
    materials = 1000 + 3 * Decimal("12.5")
    assert by == {"labour": labour, "materials": materials, "qc": 400, "equipment": 48 * 5, "facility": 48 * 20,
                  "review": 2 * 60 + 100, "logistics": 1000,
                  "overhead": (labour + materials + 400 + 240 + 960 + 220 + 1000) / 10}
    assert sheet.total == Decimal("4331.25")  # 3,937.50 + 10 % and not sheet.unpriced
    lisbon = business.variable_cost(MASTER, content, site_code="LIS", device_type="lonza_cocoon",
                                    process_days=Decimal(2))
    assert [line.description for line in lisbon.unpriced] == ["Device (lonza_cocoon) over 2 days — no price in "
                                                              "the cost model"]
    left = business.variable_cost(MASTER, content, site_code="MAD", device_type="clinimacs_prodigy",
                                  process_days=Decimal(2), leave_out=business.COVERED_BY_CAPITAL)
    assert left.total == (labour + materials + 400 + 220 + 1000) * Decimal("1.1")


def test_the_break_even_against_the_centralized_price_by_hand():
    """COST-BATCH: capital (1 unit €100k + devices €50k each, over 10 years) + fixed €30k a year + €10,000 a batch,
    no failures; 1 patient a year costs 10k + 5k + 30k + 10k = €55,000; 2 patients (45k + 20k) / 2 = €32,500;
    3 patients (45k + 30k) / 3 = €25,000 ≤ the centralized €30,000: the break-even is 3 a year."""
    content = checked(SMALL)
    case = business.business_case(content, Decimal(10_000), patients=range(1, 6), failure_rate=Decimal(0),
                                  process_days=Decimal(10))
    assert [(y.devices, y.units, y.capital, y.fixed) for y in case.years[:3]] == [(1, 1, 15_000, 30_000)] * 3
    assert [y.per_patient for y in case.years[:3]] == [Decimal(55_000), Decimal(32_500), Decimal(25_000)]
    assert case.break_even == 3 and case.centralized_price == 30_000
    assert {i.path: i.source for i in case.inputs} == {
        "capital.unit_price": "", "capital.devices_per_unit": "", "capital.device_price": "",
        "capital.installation": "", "capital.depreciation_years": "", "fixed.staff": "",
        "fixed.rent": "the lease, 2026", "centralized_price": "a list price"}
    failing = business.business_case(content, Decimal(10_000), patients=[4], failure_rate=Decimal("0.2"))
    assert failing.years[0].batches == 5 and failing.years[0].variable == 50_000  # 4 / (1 − 0.2)


def test_devices_follow_the_volume_by_erlang_c():
    """The fewest devices whose mean wait stays within the limit: more batches, more devices, more units."""
    assert business.devices_needed(0, 10) == 0
    # 18 batches a year of 10 days on one device: M/M/1, λ = 18/365 a day, μ = 0.1, Wq = ρ / (μ − λ) ≈ 9.7 days
    rho = 18 / 365 / 0.1
    assert rho / (0.1 - 18 / 365) == pytest.approx(9.73, abs=0.01)
    assert business.devices_needed(18, 10, max_wait_days=10) == 1
    assert business.devices_needed(18, 10, max_wait_days=7) == 2
    assert business.devices_needed(200, 10) > business.devices_needed(50, 10) > 50 * 10 / 365  # more than ρ


def test_old_contents_stay_valid_and_figures_are_normalized():
    """COST-BATCH: a content without the new sections is unchanged; a bare number is an estimate; a published
    figure keeps its source."""
    old = {"currency": "EUR", "logistics": {"per_shipment": 650}, "overhead": {"percent": 15}}
    assert checked(old) == {"currency": "EUR", "logistics": {"per_shipment": "650"}, "overhead": {"percent": "15"}}
    out = checked(SMALL)
    assert out["capital"]["unit_price"] == {"value": "100000", "estimate": True}
    assert out["fixed"]["rent"] == {"value": "10000", "source": "the lease, 2026"}
    assert out["logistics"]["per_hour"] == "10"


@pytest.mark.parametrize(("change", "path"), [
    ({"capital": {"unit_price": -1}}, "capital.unit_price"),
    ({"capital": {"unit_price": "9" * 400}}, "capital.unit_price"),
    ({"capital": {"unit_price": "NaN"}}, "capital.unit_price"),
    ({"capital": {"depreciation_years": 0}}, "capital.depreciation_years"),
    ({"capital": {"depreciation_years": 51}}, "capital.depreciation_years"),
    ({"capital": {"devices_per_unit": "1.5"}}, "capital.devices_per_unit"),
    ({"capital": {"prefab": 1}}, "capital.prefab"),
    ({"capital": {"unit_price": {"value": 1, "source": "x\x00y"}}}, "capital.unit_price.source"),
    ({"capital": {"unit_price": {"value": 1, "source": ""}}}, "capital.unit_price.source"),
    ({"capital": {"unit_price": {"value": 1, "source": "s" * 301}}}, "capital.unit_price.source"),
    ({"capital": {"unit_price": {"value": 1, "source": "a", "estimate": True}}}, "capital.unit_price"),
    ({"capital": {"unit_price": {"value": 1, "estimate": False}}}, "capital.unit_price.estimate"),
    ({"capital": {"unit_price": {"source": "a"}}}, "capital.unit_price.value"),
    ({"capital": [1]}, "capital"),
    ({"fixed": {"rent": 100_000_001}}, "fixed.rent"),
    ({"fixed": {"rent": True}}, "fixed.rent"),
    ({"centralized_price": {"value": "1e400", "source": "a"}}, "centralized_price.value"),
    ({"centralized_price": 10_000_001}, "centralized_price"),
    ({"logistics": {"per_hour": 10_001}}, "logistics.per_hour"),
])
def test_hostile_planning_figures_are_refused_naming_the_path(change: dict[str, Any], path: str):
    """COST-BATCH: a negative, impossible, non-finite, 400-digit or unknown figure, a source with NUL or empty or
    too long, both a source and an estimate: refused, naming where."""
    content = copy.deepcopy(SMALL)
    content.update(change)
    with pytest.raises(ContentRefused) as refused:
        checked(content)
    assert refused.value.path == path, refused.value


class _Version:
    def __init__(self, content: dict[str, Any]) -> None:
        self.content = content


def _demo() -> tuple[dict[str, Any], dict[str, Any]]:
    master = yaml.safe_load(DEMO_V1.read_text())
    return checked(demo_costs.content([_Version(master)])), master  # type: ignore[list-item]


def test_the_demo_models_case_falls_with_volume_within_the_published_anchors():
    """COST-BATCH: with the demo's model (estimates, and the UK list price as the centralized price) the cost per
    patient falls as the volume grows; at DKFZ's 18 patients a year it lies between DKFZ's €60,000 and ARI-0001's
    €89,000; far below the centralized price from a few patients a year; every input is an estimate or sourced."""
    content, master = _demo()
    found = business.site_case(content, master, site_code="MAD", device_type="clinimacs_prodigy", patients_max=100)
    per_patient = [y.per_patient for y in found.case.years]
    assert per_patient[0] > per_patient[9] > per_patient[49] > per_patient[99]
    assert Decimal(60_000) < per_patient[17] < Decimal(89_000)
    assert per_patient[99] < Decimal(70_000)
    assert found.case.break_even is not None and found.case.break_even <= 5
    assert found.case.centralized_price == 330_000
    sourced = {i.path for i in found.case.inputs if not i.estimate}
    assert sourced == {"centralized_price"} and len(found.case.inputs) == 10
    assert not found.planned.unpriced and found.counted.total < found.planned.total


def test_the_twins_centralized_scenario_is_priced_on_the_same_model():
    """COST-BATCH: the same short twin run, decentralized and centralized, priced with the one model: the
    centralized network pays one site's fixed cost but longer transport (more hours a leg)."""
    content, master = _demo()
    decentral, central = business.twin_comparison(content, master, sites=3, patients_per_site=20,
                                                  device_type="clinimacs_prodigy")
    assert (decentral.open_sites, central.open_sites) == (3, 1) and decentral.devices == central.devices == 6
    assert central.fixed * 3 == decentral.fixed
    assert central.leg_hours / central.legs > decentral.leg_hours / decentral.legs
    for s in (decentral, central):
        assert s.per_treated is not None and s.total == s.capital + s.fixed + s.variable + s.logistics
        assert s.per_treated == (s.total / Decimal(str(s.treated))).quantize(Decimal("0.01"), ROUND_HALF_UP)


def test_a_run_made_before_the_twin_reported_its_legs_is_not_priced():
    """COST-BATCH: a stored twin result without transport legs is not priced (never a silent zero logistics)."""
    content, master = _demo()
    old = {"kind": "twin", "parameters": {"horizon_days": 365}, "scenarios": [
        {"name": "baseline", "sites": [{"site": "S00", "units": 2}], "replications": [{"treated": 10, "batches": 11}]}]}
    assert business.run_prices(old, content, master, device_type="clinimacs_prodigy") == []
    new = {"kind": "twin", "parameters": {"horizon_days": 365}, "scenarios": [
        {"name": "baseline", "sites": [{"site": "S00", "units": 2}],
         "replications": [{"treated": 10, "batches": 11, "transport_legs": 21, "leg_hours": 42.0}] * 2}]}
    [priced] = business.run_prices(new, content, master, device_type="clinimacs_prodigy")
    assert priced.replications == 2 and priced.fixed == 370_000 and priced.logistics == 21 * 700 + 42 * 40
    assert priced.per_treated == (priced.capital + priced.fixed + priced.variable + priced.logistics) / 10


def test_the_failure_rate_is_the_sites_own_only_from_five_finished_batches():
    """COST-BATCH: fewer than five finished batches (the demo's Madrid: 3 aborted of 4) say little: the published
    default stands; from five on, the site's aborted share (at most 0.9)."""
    assert business.failure_rate_observed(4, 3) == business.DEFAULT_FAILURE_RATE
    assert business.failure_rate_observed(20, 1) == Decimal("0.05")
    assert business.failure_rate_observed(5, 5) == Decimal("0.9")
