"""ASTCT consensus grading of CRS and ICANS (Lee et al., BBMT 2019;25:625–638), one test per row and
boundary of the tables (PAT-GRADE). Pure: no database."""

from __future__ import annotations

import pytest

from pocare.patients.grading import GradingInputError, crs_grade, ctcae_grade, icans_grade

ICE_FULL = {"orientation": 4, "naming": 3, "commands": 1, "writing": 1, "attention": 1}


def _ice(score: int) -> dict[str, int]:
    """ICE items adding up to ``score`` (orientation lost first, then naming, then the rest)."""
    items = dict(ICE_FULL)
    missing = 10 - score
    for item in ("orientation", "naming", "commands", "writing", "attention"):
        take = min(items[item], missing)
        items[item] -= take
        missing -= take
    return items


# --- CRS (Table 3) -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("inputs", "grade"), [
    ({"temperature_c": 37.9}, 0),
    ({"temperature_c": 38.0}, 1),
    ({"temperature_c": 39.2, "hypotension": True}, 2),
    ({"temperature_c": 38.5, "oxygen_device": "nasal_cannula", "oxygen_flow_l_min": 6}, 2),
    ({"temperature_c": 38.5, "oxygen_device": "blow_by"}, 2),
    ({"temperature_c": 39.2, "hypotension": True, "vasopressors": 1}, 3),
    ({"temperature_c": 39.2, "hypotension": True, "vasopressors": 1, "vasopressin": True}, 3),
    ({"temperature_c": 39.2, "hypotension": True, "vasopressin": True}, 3),
    ({"temperature_c": 38.5, "oxygen_device": "nasal_cannula", "oxygen_flow_l_min": 6.5}, 3),
    ({"temperature_c": 38.5, "oxygen_device": "facemask"}, 3),
    ({"temperature_c": 38.5, "oxygen_device": "non_rebreather", "oxygen_flow_l_min": 15}, 3),
    ({"temperature_c": 38.5, "oxygen_device": "venturi"}, 3),
    ({"temperature_c": 39.2, "hypotension": True, "vasopressors": 2}, 4),
    ({"temperature_c": 38.5, "oxygen_device": "cpap"}, 4),
    ({"temperature_c": 38.5, "oxygen_device": "bipap"}, 4),
    ({"temperature_c": 38.5, "oxygen_device": "mechanical_ventilation"}, 4),
], ids=["37.9-no-fever", "38.0-fever-only", "hypotension-no-pressor", "nc-6-low-flow", "blow-by",
        "one-vasopressor", "one-vasopressor-plus-vasopressin", "vasopressin-alone", "nc-6.5-high-flow", "facemask",
        "non-rebreather", "venturi", "two-vasopressors", "cpap", "bipap", "ventilation"])
def test_crs_table_rows(inputs, grade):
    """PAT-GRADE: each row and boundary of the ASTCT CRS table gives its grade, with a reason per finding."""
    result = crs_grade(inputs)
    assert result.grade == grade
    assert result.reasons


def test_crs_fever_and_one_vasopressor_is_grade_3_with_its_reasons():
    """PAT-GRADE: the issue's case: 39.2 °C and one vasopressor is CRS grade 3, and the reasons say why."""
    result = crs_grade({"temperature_c": 39.2, "hypotension": True, "vasopressors": 1})
    assert result.grade == 3
    assert any("39.2 °C is a fever" in r for r in result.reasons)
    assert any("one vasopressor is grade 3" in r for r in result.reasons)


def test_crs_takes_the_more_severe_of_hypotension_and_hypoxia():
    """PAT-GRADE: hypotension without pressors (2) with BiPAP (4) is grade 4."""
    result = crs_grade({"temperature_c": 38.4, "hypotension": True, "oxygen_device": "bipap"})
    assert result.grade == 4
    assert "more severe" in result.reasons[-1]


def test_vasopressin_does_not_count_toward_multiple():
    """PAT-GRADE: one vasopressor plus vasopressin stays grade 3; two vasopressors plus vasopressin is 4."""
    assert crs_grade({"temperature_c": 39, "vasopressors": 1, "vasopressin": True}).grade == 3
    assert crs_grade({"temperature_c": 39, "vasopressors": 2, "vasopressin": True}).grade == 4


def test_masked_fever_lets_hypotension_and_hypoxia_grade():
    """PAT-GRADE: after tocilizumab the fever is gone; hypoxia on a facemask still grades 3."""
    result = crs_grade({"temperature_c": 37.1, "fever_masked": True, "oxygen_device": "facemask"})
    assert result.grade == 3
    assert "masked" in result.reasons[0]
    assert crs_grade({"temperature_c": 37.1, "fever_masked": True}).grade == 1


def test_hypoxia_and_hypotension_without_fever_are_not_crs():
    """PAT-GRADE: ASTCT grades CRS only with (or after a masked) fever."""
    result = crs_grade({"temperature_c": 37.0, "hypotension": True, "vasopressors": 2})
    assert result.grade == 0
    assert "not CRS" in result.reasons[0]


@pytest.mark.parametrize(("inputs", "field"), [
    ({"temperature_c": 29.9}, "temperature_c"),
    ({"temperature_c": 45.1}, "temperature_c"),
    ({"temperature_c": "nan"}, "temperature_c"),
    ({"temperature_c": "9" * 400}, "temperature_c"),
    ({"temperature_c": 39, "oxygen_device": "facemask", "oxygen_flow_l_min": 80.5}, "oxygen_flow_l_min"),
    ({"temperature_c": 39, "oxygen_device": "facemask", "oxygen_flow_l_min": -1}, "oxygen_flow_l_min"),
    ({"temperature_c": 39, "oxygen_device": "nasal_cannula"}, "oxygen_flow_l_min"),
    ({"temperature_c": 39, "oxygen_flow_l_min": 4}, "oxygen_flow_l_min"),
    ({"temperature_c": 39, "vasopressors": -1}, "vasopressors"),
    ({"temperature_c": 39, "vasopressors": 1.5}, "vasopressors"),
    ({"temperature_c": 39, "vasopressors": True}, "vasopressors"),
    ({"temperature_c": 39, "oxygen_device": "helmet"}, "oxygen_device"),
    ({"temperature_c": 39, "hypotension": "maybe"}, "hypotension"),
    ({"temperature_c": 39, "grade": 3}, "grade"),
])
def test_crs_refuses_implausible_inputs(inputs, field):
    """PAT-GRADE: an input no patient shows is refused, naming the field, rather than graded."""
    with pytest.raises(GradingInputError) as refused:
        crs_grade(inputs)
    assert refused.value.field == field
    assert isinstance(refused.value, ValueError)


# --- ICANS (Tables 4 and 5) --------------------------------------------------------------------------

@pytest.mark.parametrize(("score", "grade"), [(10, 0), (9, 1), (7, 1), (6, 2), (3, 2), (2, 3), (0, 3)])
def test_icans_ice_score_bands(score, grade):
    """PAT-GRADE: ICE 7–9 is grade 1, 3–6 grade 2, 0–2 grade 3 (awake), 10 no ICANS."""
    result = icans_grade(_ice(score))
    assert result.grade == grade
    assert result.inputs["ice_score"] == score
    assert f"ICE score {score} of 10" in result.reasons[0]


def test_ice_zero_because_unarousable_is_grade_4():
    """PAT-GRADE: ICE 0 because the patient is unarousable is grade 4, without the items."""
    result = icans_grade({"consciousness": "unarousable"})
    assert result.grade == 4
    assert "unarousable" in result.reasons[0]


@pytest.mark.parametrize(("finding", "grade"), [
    ({"consciousness": "awakens_spontaneously"}, 1),
    ({"consciousness": "awakens_to_voice"}, 2),
    ({"consciousness": "awakens_to_touch"}, 3),
    ({"seizure": "resolved"}, 3),
    ({"seizure": "prolonged"}, 4),
    ({"motor": "deep_focal_weakness"}, 4),
    ({"raised_icp": "focal_oedema"}, 3),
    ({"raised_icp": "diffuse_oedema"}, 4),
    ({"raised_icp": "posturing"}, 4),
    ({"raised_icp": "cranial_nerve_vi_palsy"}, 4),
    ({"raised_icp": "papilloedema"}, 4),
    ({"raised_icp": "cushings_triad"}, 4),
])
def test_icans_domain_rows(finding, grade):
    """PAT-GRADE: each domain's row of the ICANS table, with an ICE of 10, gives its grade and names it."""
    result = icans_grade({**ICE_FULL, **finding})
    assert result.grade == grade
    assert any(f"grade {grade}" in r for r in result.reasons)


def test_icans_is_the_most_severe_domain():
    """PAT-GRADE: ICE 7 (grade 1) with a rapidly resolving seizure (3) is grade 3; with deep focal weakness, 4."""
    assert icans_grade({**_ice(7), "seizure": "resolved"}).grade == 3
    result = icans_grade({**_ice(7), "seizure": "resolved", "motor": "deep_focal_weakness"})
    assert result.grade == 4
    assert "most severe domain: 4" in result.reasons[-1]


@pytest.mark.parametrize(("inputs", "field"), [
    ({**ICE_FULL, "orientation": 5}, "orientation"),
    ({**ICE_FULL, "naming": -1}, "naming"),
    ({**ICE_FULL, "commands": 2}, "commands"),
    ({k: v for k, v in ICE_FULL.items() if k != "writing"}, "writing"),
    ({**ICE_FULL, "consciousness": "asleep"}, "consciousness"),
    ({**ICE_FULL, "seizure": "some"}, "seizure"),
    ({**ICE_FULL, "motor": "tremor"}, "motor"),
    ({**ICE_FULL, "raised_icp": "headache"}, "raised_icp"),
])
def test_icans_refuses_implausible_inputs(inputs, field):
    """PAT-GRADE: ICE points beyond an item's maximum, missing items of an awake patient and unknown findings
    are refused, naming the field."""
    with pytest.raises(GradingInputError) as refused:
        icans_grade(inputs)
    assert refused.value.field == field


@pytest.mark.parametrize(("value", "grade"), [(1, 1), ("5", 5)])
def test_other_events_carry_the_typed_ctcae_grade(value, grade):
    """PAT-GRADE: an adverse event other than CRS or ICANS carries the CTCAE grade 1–5 given."""
    assert ctcae_grade(value).grade == grade


@pytest.mark.parametrize("value", [0, 6, "", "x", 2.5])
def test_ctcae_grade_outside_1_to_5_is_refused(value):
    with pytest.raises(GradingInputError):
        ctcae_grade(value)
