"""A readable, structured difference between two master-file versions' content.

Pure module (no Django import). Steps, parameters, materials, attributes, annexes and eligibility
criteria are matched by their ids (site code for annexes, material code for materials), so a change reads as
"step ``transduction``: parameter ``moi`` max 10 → 8" rather than as moved lines of YAML. The
same comparison gives the steps whose operators need training (added or changed steps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pocare.core import units
from pocare.masterfile.schema import iter_steps
from pocare.masterfile.windows import window_text

STEP_FIELDS = ("name", "instructions", "unit_operation", "equipment_class", "qualification",
               "second_person_verification", "expected_duration_min", "window")
PARAMETER_FIELDS = ("name", "type", "unit", "min", "max", "target", "choices", "material", "source", "anchor",
                    "critical")
PROCESS_FIELDS = ("max_duration_days", "release_lead_hours")
MATERIAL_FIELDS = ("name", "quantity", "unit")
ATTRIBUTE_FIELDS = ("name", "method", "unit", "acceptance", "sample_point", "release_critical",
                    "result_after_release")
ANNEX_FIELDS = ("differences", "device", "comparability_evidence")
PRODUCT_FIELDS = ("code", "name", "indication", "kind", "dose_rule")
FOLLOW_UP_FIELDS = ("label", "window_days", "mode")
ELIGIBILITY_FIELDS = ("text", "required")


@dataclass(frozen=True)
class Change:
    """One field that differs: its name (``parameter moi: max``), the old and the new value, as text."""

    field: str
    old: str
    new: str


@dataclass
class ItemDiff:
    """An item (step, attribute, annex, unit operation) that was added, removed or changed."""

    kind: str  # "added" | "removed" | "changed"
    key: str
    label: str
    context: str = ""
    changes: list[Change] = field(default_factory=list)


@dataclass
class ContentDiff:
    """Everything that differs between two versions, section by section."""

    product: list[Change] = field(default_factory=list)
    process: list[Change] = field(default_factory=list)
    unit_operations: list[ItemDiff] = field(default_factory=list)
    steps: list[ItemDiff] = field(default_factory=list)
    attributes: list[ItemDiff] = field(default_factory=list)
    annexes: list[ItemDiff] = field(default_factory=list)
    follow_up: list[ItemDiff] = field(default_factory=list)  # the patients' follow-up visits, by day
    eligibility: list[ItemDiff] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.product or self.process or self.unit_operations or self.steps or self.attributes
                    or self.annexes or self.follow_up or self.eligibility)

    @property
    def changed_step_ids(self) -> list[str]:
        """Steps added or changed (what operators must be trained on), in the new version's order."""
        return [d.key for d in self.steps if d.kind in ("added", "changed")]

    def counts(self) -> dict[str, int]:
        items = [*self.unit_operations, *self.steps, *self.attributes, *self.annexes, *self.follow_up,
                 *self.eligibility]
        return {kind: sum(1 for d in items if d.kind == kind) for kind in ("added", "removed", "changed")}


# --- showing values ---------------------------------------------------------------------------------


def show(value: Any) -> str:
    """A value as people read it: ``—`` for nothing, yes/no, numbers without a spurious ``.0``."""
    if value is None or value == [] or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(show(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {show(v)}" for k, v in value.items() if v is not None) or "—"
    return str(value)


def unit_text(unit: str | None) -> str:
    """A unit as printed (:mod:`pocare.core.units`): ``10^6 cells/kg`` → ``10⁶ cells/kg``; after a
    number, ``0.5–5 × 10⁶ cells/kg`` (the document keeps the ASCII form)."""
    return units.unit_text(unit)


def acceptance_text(acceptance: dict[str, Any] | None, unit: str | None = None) -> str:
    """``{"min": 70}`` with ``%`` → ``≥ 70 %``; a range → ``70–100 %``; ``equals`` → its value."""
    return unit_text(_acceptance_ascii(acceptance, unit))


def _acceptance_ascii(acceptance: dict[str, Any] | None, unit: str | None) -> str:
    if not acceptance:
        return "—"
    suffix = f" {unit}" if unit else ""
    low, high, equals = acceptance.get("min"), acceptance.get("max"), acceptance.get("equals")
    if equals is not None:
        return show(equals) + (suffix if not isinstance(equals, str) else "")
    if low is not None and high is not None:
        return f"{show(low)}–{show(high)}{suffix}"
    if low is not None:
        return f"≥ {show(low)}{suffix}"
    if high is not None:
        return f"≤ {show(high)}{suffix}"
    return "—"


def range_text(parameter: dict[str, Any]) -> str:
    """A parameter's target and acceptable range: ``target 5 (range 5–10 MOI)``."""
    unit = f" {parameter['unit']}" if parameter.get("unit") else ""
    low, high, target = parameter.get("min"), parameter.get("max"), parameter.get("target")
    parts = []
    if target is not None:
        parts.append(f"target {show(target)}{unit if not isinstance(target, str | bool) else ''}")
    if low is not None and high is not None:
        parts.append(f"{show(low)}–{show(high)}{unit}")
    elif low is not None:
        parts.append(f"≥ {show(low)}{unit}")
    elif high is not None:
        parts.append(f"≤ {show(high)}{unit}")
    if parameter.get("choices"):
        parts.append("one of " + ", ".join(parameter["choices"]))
    return unit_text("; ".join(parts)) or "—"


def _parameter_summary(p: dict[str, Any]) -> str:
    critical = ", critical" if p.get("critical") else ""
    return f"{p.get('name')} ({p.get('type')}{critical}): {range_text(p)}"


def _material_summary(m: dict[str, Any]) -> str:
    return unit_text(f"{m.get('name')}: {show(m.get('quantity'))} {m.get('unit') or ''}".strip())


# --- comparing ---------------------------------------------------------------------------------------


def _field_changes(old: dict[str, Any], new: dict[str, Any], fields: tuple[str, ...], prefix: str = "",
                   *, unit: tuple[str | None, str | None] = (None, None)) -> list[Change]:
    out = []
    for name in fields:
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        label = f"{prefix}{name.replace('_', ' ')}"
        if name == "acceptance":
            out.append(Change(label, acceptance_text(before, unit[0]), acceptance_text(after, unit[1])))
        elif name == "window":
            out.append(Change("time window", window_text(before), window_text(after)))
        else:
            out.append(Change(label, show(before), show(after)))
    return out


def _keyed(items: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {str(item[key]): item for item in items}


def _sub_changes(old: list[dict[str, Any]], new: list[dict[str, Any]], key: str, fields: tuple[str, ...],
                 noun: str, summary: Any) -> list[Change]:
    """Field-level changes of a step's parameters or materials, matched by ``key``."""
    before, after = _keyed(old, key), _keyed(new, key)
    out: list[Change] = []
    for k, item in after.items():
        if k not in before:
            out.append(Change(f"{noun} {k} added", "—", summary(item)))
        else:
            out.extend(_field_changes(before[k], item, fields, f"{noun} {k}: "))
    for k, item in before.items():
        if k not in after:
            out.append(Change(f"{noun} {k} removed", summary(item), "—"))
    return out


def _step_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    changes = _field_changes(old, new, STEP_FIELDS)
    changes += _sub_changes(old.get("parameters") or [], new.get("parameters") or [], "id", PARAMETER_FIELDS,
                            "parameter", _parameter_summary)
    changes += _sub_changes(old.get("materials") or [], new.get("materials") or [], "code", MATERIAL_FIELDS,
                            "material", _material_summary)
    return changes


def _items(old: list[dict[str, Any]], new: list[dict[str, Any]], key: str, label: str,
           compare: Any, context: Any = None) -> list[ItemDiff]:
    before, after = _keyed(old, key), _keyed(new, key)
    out: list[ItemDiff] = []
    for k, item in after.items():
        ctx = context(item) if context else ""
        if k not in before:
            out.append(ItemDiff("added", k, str(item.get(label) or k), ctx))
        else:
            changes = compare(before[k], item)
            if changes:
                out.append(ItemDiff("changed", k, str(item.get(label) or k), ctx, changes))
    for k, item in before.items():
        if k not in after:
            out.append(ItemDiff("removed", k, str(item.get(label) or k), context(item) if context else ""))
    return out


def diff_content(old: dict[str, Any], new: dict[str, Any]) -> ContentDiff:
    """Compare two versions' content (``MasterFileVersion.content``) section by section."""
    result = ContentDiff()
    result.product = _field_changes(old.get("product") or {}, new.get("product") or {}, PRODUCT_FIELDS)
    result.process = _field_changes(old.get("process") or {}, new.get("process") or {}, PROCESS_FIELDS)
    old_uos = (old.get("process") or {}).get("unit_operations") or []
    new_uos = (new.get("process") or {}).get("unit_operations") or []
    result.unit_operations = _items(
        old_uos, new_uos, "id", "name",
        lambda a, b: _field_changes(a, b, ("name",))
        + ([Change("steps", show([s["id"] for s in a["steps"]]), show([s["id"] for s in b["steps"]]))]
           if [s["id"] for s in a["steps"]] != [s["id"] for s in b["steps"]] else []),
    )
    result.steps = _items(iter_steps(old), iter_steps(new), "id", "name", _step_changes,
                          context=lambda s: s["unit_operation"])
    old_attrs = (old.get("specification") or {}).get("attributes") or []
    new_attrs = (new.get("specification") or {}).get("attributes") or []
    result.attributes = _items(
        old_attrs, new_attrs, "id", "name",
        lambda a, b: _field_changes(a, b, ATTRIBUTE_FIELDS, unit=(a.get("unit"), b.get("unit"))),
    )
    result.annexes = _items(old.get("site_annexes") or [], new.get("site_annexes") or [], "site", "site",
                            lambda a, b: _field_changes(a, b, ANNEX_FIELDS))
    result.follow_up = _items(old.get("follow_up") or [], new.get("follow_up") or [], "day", "label",
                              lambda a, b: _field_changes(a, b, FOLLOW_UP_FIELDS))
    result.eligibility = _items(old.get("eligibility") or [], new.get("eligibility") or [], "id", "text",
                                lambda a, b: _field_changes(a, b, ELIGIBILITY_FIELDS))
    return result


def changed_step_ids(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Ids of the steps added or changed from ``old`` to ``new`` (the training a change needs)."""
    return diff_content(old, new).changed_step_ids
