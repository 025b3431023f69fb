"""Time windows and lot parameters in the master-file schema: valid ones parse, implausible ones
are refused with the line, the field and what is allowed, and a change of either shows in the
diff like every other field."""

from __future__ import annotations

import pytest

from pocare.masterfile.diff import diff_content
from pocare.masterfile.schema import DocumentError, document_content, parse_document
from pocare.masterfile.windows import window_text
from tests.masterfile.helpers import V1_TEXT
from tests.masterfile.test_schema import BASE

STEP = "process.unit_operations[1].steps[0]"
DURATION = "          expected_duration_min: 45\n"


def _with_window(window: str, *, process: str = "") -> str:
    text = BASE.replace(DURATION, DURATION + f"          window: {window}\n")
    return text.replace("process:\n", f"process:\n{process}", 1) if process else text


def test_a_window_anchored_on_an_earlier_step_parses_and_reads_for_people():
    """P11-10f POC-3: 'between 18 and 30 h after step receipt-identity', critical."""
    doc = parse_document(_with_window("{anchor: receipt-identity, earliest_hours: 18, latest_hours: 30, "
                                      "critical: true}", process="  max_duration_days: 14\n"))
    content = document_content(doc)
    window = content["process"]["unit_operations"][1]["steps"][0]["window"]
    assert window == {"anchor": "receipt-identity", "earliest_hours": 18, "latest_hours": 30, "critical": True}
    assert window_text(window) == "18 h–30 h after step receipt-identity (critical)"
    assert window_text({"earliest_hours": 60, "latest_hours": 132}) == "2 d 12 h–5 d 12 h after the batch start"


#: (window, process prefix, the field named, words of the message)
IMPLAUSIBLE = [
    ("{earliest_hours: 30, latest_hours: 18}", "", f"{STEP}.window.latest_hours",
     "latest_hours 18 is before earliest_hours 30"),
    ("{anchor: transduction, earliest_hours: 1, latest_hours: 2}", "", f"{STEP}.window.anchor",
     "the anchor 'transduction' is this step itself; anchor on an earlier step: receipt-identity"),
    ("{anchor: harvest, earliest_hours: 1, latest_hours: 2}", "", f"{STEP}.window.anchor",
     "the anchor 'harvest' is not in the process"),
    ("{earliest_hours: -1, latest_hours: 2}", "", f"{STEP}.window.earliest_hours", "must be at least 0"),
    ("{earliest_hours: 0, latest_hours: " + "9" * 400 + "}", "", "", "number"),
    ("{earliest_hours: 0, latest_hours: 9000}", "", f"{STEP}.window.latest_hours", "must be at most 8760"),
    ("{earliest_hours: 0, latest_hours: 400}", "  max_duration_days: 14\n", f"{STEP}.window.latest_hours",
     "the window ends 400 h after the batch start, beyond the process's max_duration_days 14 (336 h)"),
    ("{earliest_hours: 0, latest_hours: 2, critical: sometimes}", "", f"{STEP}.window.critical",
     "must be true or false"),
    ("{earliest_hours: 0, latest_hours: 2, late: ok}", "", f"{STEP}.window.late", "unknown field 'late'"),
    ("{earliest_hours: 0}", "", f"{STEP}.window.latest_hours", "'latest_hours' is required here but missing"),
    ("{earliest_hours: 0, latest_hours: 2}", "  max_duration_days: 0\n", "process.max_duration_days",
     "must be greater than 0"),
]


@pytest.mark.parametrize(("window", "process", "path", "words"), IMPLAUSIBLE,
                         ids=[f"{i}-{w[:24]}" for i, (w, *_rest) in enumerate(IMPLAUSIBLE)])
def test_an_implausible_window_is_refused_naming_the_field(window, process, path, words):
    """P11-10f DI-ALCOA: a window that cannot be is refused with its line, its field and what is allowed."""
    with pytest.raises(DocumentError) as refused:
        parse_document(_with_window(window, process=process))
    problems = refused.value.problems
    assert any(words in p.message and (not path or p.path == path) for p in problems), problems
    if path:
        assert all(p.line > 0 for p in problems)


def test_an_anchor_on_a_later_step_is_refused():
    """P11-10f: a window counts from a step that comes earlier, never from a later one."""
    text = BASE.replace("          expected_duration_min: 20\n",
                        "          expected_duration_min: 20\n"
                        "          window: {anchor: transduction, earliest_hours: 0, latest_hours: 2}\n", 1)
    with pytest.raises(DocumentError) as refused:
        parse_document(text)
    assert "the anchor 'transduction' comes later in the process" in str(refused.value)


LOT = "{id: program, name: Program, type: choice, choices: [TCT, TCT-short]}"


@pytest.mark.parametrize(("parameter", "words"), [
    ("{id: vector-lot, name: Vector lot, type: lot}", "a lot parameter names the material whose lot it is; "
                                                      "this step's materials: LV-CAR19"),
    ("{id: vector-lot, name: Vector lot, type: lot, material: TS520}", "the step 'transduction' uses no material "
                                                                       "'TS520'; its materials: LV-CAR19"),
    ("{id: vector-lot, name: Vector lot, type: text, material: LV-CAR19}", "material applies only to parameters "
                                                                           "of type lot"),
    ("{id: vector-lot, name: Vector lot, type: lot, material: LV-CAR19, unit: mL}", "takes no unit, target or"),
])
def test_a_lot_parameter_must_name_a_material_of_its_step(parameter, words):
    """ATMP-TRACE: a lot parameter is the lot of one of its step's materials, so it names it."""
    with pytest.raises(DocumentError) as refused:
        parse_document(BASE.replace(LOT, parameter))
    assert words in str(refused.value)
    parse_document(BASE.replace(LOT, "{id: vector-lot, name: Vector lot, type: lot, material: LV-CAR19}"))


def test_a_change_of_window_of_duration_and_of_a_lot_parameter_shows_in_the_diff():
    """POC-4 P11-10f: the diff names the window before and after, the process's longest duration,
    and a parameter that became a reference to the lot consumed."""
    old = document_content(parse_document(V1_TEXT))
    text = V1_TEXT.replace("{anchor: activation, earliest_hours: 18, latest_hours: 30, critical: true}",
                           "{anchor: activation, earliest_hours: 20, latest_hours: 28, critical: true}")
    text = text.replace("max_duration_days: 14", "max_duration_days: 13")
    text = text.replace("{id: tubing-set-lot, name: Tubing set lot, type: lot, material: TS520}",
                        "{id: tubing-set-lot, name: Tubing set lot, type: text}")
    d = diff_content(old, document_content(parse_document(text)))
    transduction = next(i for i in d.steps if i.key == "transduction")
    assert [(c.field, c.old, c.new) for c in transduction.changes] == [
        ("time window", "18 h–30 h after step activation (critical)", "20 h–28 h after step activation (critical)")]
    assert [(c.field, c.old, c.new) for c in d.process] == [("max duration days", "14", "13")]
    setup = next(i for i in d.steps if i.key == "prodigy-setup")
    assert {(c.field, c.old, c.new) for c in setup.changes} == {("parameter tubing-set-lot: type", "lot", "text"),
                                                                ("parameter tubing-set-lot: material", "TS520", "—")}
    assert set(d.changed_step_ids) == {"transduction", "prodigy-setup"}


@pytest.mark.parametrize("value, refused_at", [("72", None), ("0", None), ("1440", None),
                                               ("1441", "process.release_lead_hours"),
                                               ("-1", "process.release_lead_hours"),
                                               ("1" + "0" * 400, "")])  # too long a number: refused as text
def test_the_release_lead_time_is_optional_and_bounded(value, refused_at):
    """The booking plans the infusion after the master file's QC and release lead time: 0 to 60 days."""
    text = BASE.replace("process:\n", f"process:\n  release_lead_hours: {value}\n", 1)
    if refused_at is None:
        assert parse_document(text).process.release_lead_hours == float(value)
    else:
        with pytest.raises(DocumentError) as caught:
            parse_document(text)
        assert [p.path for p in caught.value.problems] == [refused_at]
