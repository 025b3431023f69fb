"""A readable diff between two versions: steps, parameters and ranges, specification, annexes."""

from __future__ import annotations

from pocare.masterfile.diff import acceptance_text, diff_content, range_text, show
from pocare.masterfile.schema import document_content, parse_document
from tests.masterfile.helpers import V1_TEXT, V2_TEXT

V1 = document_content(parse_document(V1_TEXT))


def _content(text):
    return document_content(parse_document(text))


def test_the_demo_change_reads_field_by_field():
    """POC-4 P11-10f: v1 → v2 shows the changed steps with old and new values, the harvest's time
    window extended with its limit, the process's longest duration and its release lead time."""
    d = diff_content(V1, _content(V2_TEXT))
    assert d.changed_step_ids == ["ipc-day5", "expansion-harvest-decision", "harvest"]
    ipc = next(i for i in d.steps if i.key == "ipc-day5")
    assert ipc.kind == "changed" and ipc.context == "expansion"
    assert [(c.field, c.old, c.new) for c in ipc.changes] == [("parameter car-positive: min", "5", "8")]
    decision = next(i for i in d.steps if i.key == "expansion-harvest-decision")
    harvest = next(i for i in d.steps if i.key == "harvest")
    assert ("parameter harvest-day: max", "10", "12") in [(c.field, c.old, c.new) for c in harvest.changes]
    assert ("time window", "6 d 12 h–9 d 12 h after step activation",
            "6 d 12 h–11 d 12 h after step activation") in [(c.field, c.old, c.new) for c in decision.changes]
    assert [(c.field, c.old, c.new) for c in d.process] == [("max duration days", "14", "16"),
                                                            ("release lead hours", "—", "72")]
    assert [u.key for u in d.unit_operations] == ["expansion"]
    assert not d.attributes and not d.annexes and not d.product
    assert d.counts() == {"added": 0, "removed": 0, "changed": 4}


def test_added_removed_and_moved_steps_parameters_and_materials():
    """POC-4: additions and removals are named; a step moved to another unit operation is a change."""
    text = V1_TEXT.replace("        - id: release-sampling\n", "        - id: qc-sampling\n")
    text = text.replace("            - {id: vector-volume, name: Vector volume added, type: number, unit: mL, min: 0.1, max: 20}\n", "")
    text = text.replace("{code: TRANSACT, name: MACS GMP T Cell TransAct, quantity: 1, unit: vial}",
                        "{code: TRANSACT, name: MACS GMP T Cell TransAct, quantity: 2, unit: vial}")
    d = diff_content(V1, _content(text))
    kinds = {(i.kind, i.key) for i in d.steps}
    assert {("added", "qc-sampling"), ("removed", "release-sampling"), ("changed", "transduction"),
            ("changed", "activation")} <= kinds
    transduction = next(i for i in d.steps if i.key == "transduction")
    assert transduction.changes[0].field == "parameter vector-volume removed"
    activation = next(i for i in d.steps if i.key == "activation")
    assert [(c.field, c.old, c.new) for c in activation.changes] == [("material TRANSACT: quantity", "1", "2")]
    assert "qc-sampling" in d.changed_step_ids and "release-sampling" not in d.changed_step_ids


def test_specification_and_annex_changes_are_shown_as_criteria():
    """POC-4 CMP-SITE: acceptance criteria read as people write them; annexes by site."""
    text = V1_TEXT.replace("acceptance: {max: 0.5}", "acceptance: {max: 5}")
    text = text.replace("  - site: MUC\n    device: lonza_cocoon", "  - site: MUC\n    device: other_closed_system")
    d = diff_content(V1, _content(text))
    endotoxin = next(i for i in d.attributes if i.key == "endotoxin")
    assert [(c.field, c.old, c.new) for c in endotoxin.changes] == [("acceptance", "≤ 0.5 EU/mL", "≤ 5 EU/mL")]
    assert [(c.field, c.old, c.new) for c in d.annexes[0].changes] == [("device", "lonza_cocoon", "other_closed_system")]
    assert d.changed_step_ids == []


def test_identical_content_has_an_empty_diff():
    """POC-4: no difference, no change."""
    assert diff_content(V1, V1).empty


def test_values_and_ranges_are_written_for_people():
    """DI-ALCOA: legible values — ranges and criteria as people write them."""
    assert show(None) == "—" and show(True) == "yes" and show(5.0) == "5" and show([1, 2]) == "1, 2"
    assert acceptance_text({"min": 0.5, "max": 5}, "10^6 cells/kg") == "0.5–5 × 10⁶ cells/kg"
    assert acceptance_text({"equals": "no growth"}, None) == "no growth"
    assert range_text({"type": "number", "unit": "MOI", "min": 5, "max": 10, "target": 5}) == "target 5 MOI; 5–10 MOI"
