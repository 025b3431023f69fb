"""The schema of a POCare Master File document, and its parser (POC-1, POC-3).

A master-file version is authored as YAML that people read and review. :func:`parse_document`
turns the text into a validated :class:`MasterFileDocument` or raises :class:`DocumentError`
with every problem found, each naming the line, the field (as a path such as
``process.unit_operations[1].steps[0].parameters[2].unit``) and what is allowed there.

Pure module: no Django import, so it is usable (and testable) as a library. The shape is::

    product: {code, name, indication, kind: autologous|allogeneic, dose_rule}
    process:
      unit_operations:
        - {id, name, steps: [{id, name, instructions, equipment_class, qualification,
                               second_person_verification, optional, expected_duration_min,
                               window: {anchor, earliest_hours, latest_hours, critical},   # optional
                               parameters: [{id, name, type, unit, target, min, max, physical: {min, max},
                                             choices, material, source, anchor, critical}],
                               materials: [{code, name, quantity, unit}]}]}
      max_duration_days: 14                                                     # optional
      release_lead_hours: 72                                                    # optional, 0–1,440
      monitoring: [{id, name, unit, alarm_min, alarm_max, physical: {min, max}}]  # optional
    specification:
      attributes: [{id, name, method, unit, acceptance: {min, max, equals}, physical: {min, max},
                    sample_point, sample_step, release_critical, result_after_release}]
    transport: {apheresis, fresh_product, cryopreserved_product: {min, max}}  # optional, °C
    shelf_life: {fresh_product_hours, cryopreserved_product_days}             # optional, > 0
    site_annexes: [{site, differences, device, comparability_evidence}]      # optional
    follow_up: [{label, day, window_days, mode: in_person|phone|questionnaire}]  # optional (PAT-LTFU)
    eligibility: [{id, text, required}]                                       # optional, ≤ 60 criteria

Two passes: pydantic checks the structure and types (every field, ``extra="forbid"``), then
:func:`_semantic_problems` checks what relates fields to each other (unique ids, ranges, units
of numeric values), so a document is never half-accepted.

``physical`` (optional) states the bounds a value can possibly have, apart from what the process or
specification accepts (viability 0–100 %, endotoxin ≥ 0 EU/mL, pH 0–14); left out, it follows from
the unit (:mod:`pocare.masterfile.plausibility`). Limits, targets and acceptance criteria must lie
inside it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from pocare.core import yamlsafe
from pocare.masterfile import plausibility

#: Units a value may be recorded or specified in. A closed list keeps records comparable across
#: sites (the same CQA in the same unit everywhere) and catches typing mistakes ("ml", "Eu/ml").
UNITS: tuple[str, ...] = (
    "%", "cells", "cells/kg", "10^6 cells", "10^6 cells/kg", "EU/mL", "copies/cell", "pg/mL", "°C",
    "min", "h", "d", "mL", "L", "rpm", "MOI", "fold", "count", "bag", "vial", "kit", "mg", "µg", "g",
)
PARAMETER_TYPES: tuple[str, ...] = ("number", "integer", "text", "boolean", "choice", "lot", "derived")


@dataclass(frozen=True)
class Derivation:
    """How a ``derived`` parameter's value follows from a record that already states the fact:
    the type of the value, its unit, and the record it is read from (one fact, one value)."""

    value_type: str
    unit: str | None
    reads: str


#: The closed set of derivations a ``derived`` parameter may name as its ``source``. The value is
#: computed from the named record when the step is recorded, and recorded with the step.
DERIVATIONS: dict[str, Derivation] = {
    "collection_to_receipt": Derivation(
        "number", "h", "hours from the end of collection to the completed receipt hand-off at the site "
                       "(the custody order's collection and hand-offs)"),
    "identity_scans": Derivation(
        "boolean", None, "the receipt and start-of-manufacture scans presented the collection's DIN "
                         "under the order's COI (the chain-of-identity hand-offs)"),
    "arrival_temperature": Derivation(
        "number", "°C", "the apheresis shipment's data-logger reading at the receipt hand-off "
                        "(the shipment's temperature log)"),
    "culture_day": Derivation(
        "integer", "d", "whole days (rounded to the nearest) from the anchor step, or the batch start, to "
                        "this step (the batch's step times)"),
}
PRODUCT_KINDS: tuple[str, ...] = ("autologous", "allogeneic")
NUMERIC_TYPES = frozenset({"number", "integer"})
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


# --- value checks with messages that say what is allowed -------------------------------------------


def _unit(value: str) -> str:
    if value not in UNITS:
        raise ValueError(f"unit {value!r} is not allowed; use one of: {', '.join(UNITS)}")
    return value


def _identifier(value: str) -> str:
    if not value or len(value) > 64 or not value[0].isalnum() or not set(value) <= _ID_CHARS:
        raise ValueError(
            f"{value!r} is not a valid id: use up to 64 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )
    return value


def _number(value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number; write a number such as 5 or 0.5")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _scalar(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValueError("must be a single value: a number, text, or true/false")


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
Identifier = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_identifier)]
Unit = Annotated[str, AfterValidator(_unit)]
Number = Annotated[Any, AfterValidator(_number)]
Scalar = Annotated[Any, AfterValidator(_scalar)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ProductSection(_Strict):
    """What the product is: its code (as in the network), name, indication, kind and dose rule."""

    code: Identifier
    name: Text
    indication: Text
    kind: Literal["autologous", "allogeneic"]
    dose_rule: Text


class PhysicalBounds(_Strict):
    """What a value can possibly be (inclusive; either end may be open), apart from what is
    acceptable: outside it a value is refused as impossible, not recorded as out of range."""

    min: Number | None = None
    max: Number | None = None


class Parameter(_Strict):
    """A value the operator records at a step, with its type, unit, target and acceptable range.

    ``type: lot`` names a ``material`` of the same step: the value is the lot chosen for that
    material under Materials, never typed apart from it (one fact, one value). ``type: derived``
    names a ``source`` (one of :data:`DERIVATIONS`): the value is read from the record that
    already states the fact, shown read-only and recorded with the step; ``anchor`` (for
    ``culture_day``) names the earlier step counted from."""

    id: Identifier
    name: Text
    type: Literal["number", "integer", "text", "boolean", "choice", "lot", "derived"]
    unit: Unit | None = None
    target: Scalar = None
    min: Number | None = None
    max: Number | None = None
    physical: PhysicalBounds | None = None
    choices: list[Text] | None = None
    material: Identifier | None = None  # type lot: the code of the step's material whose lot this is
    source: Literal["collection_to_receipt", "identity_scans", "arrival_temperature", "culture_day"] | None = None
    anchor: Identifier | None = None  # type derived, source culture_day: the earlier step counted from
    critical: bool = False


class Material(_Strict):
    """One line of a step's bill of materials."""

    code: Identifier
    name: Text
    quantity: Number
    unit: Unit


#: The longest offset a time window may state, in hours, whatever the process (a year): a bound
#: that keeps a typing slip ("12000" for "120") or a 400-digit number out of the master file.
MAX_WINDOW_HOURS = 24 * 365
Hours = Annotated[Number, Field(ge=0, le=MAX_WINDOW_HOURS)]


class TimeWindow(_Strict):
    """When a step may be performed: between ``earliest_hours`` and ``latest_hours`` after its
    anchor — the performance of an earlier step (``anchor``: its id) or, without one, the batch's
    start. Outside it a ``critical`` step is refused until a deviation is raised; any other step
    is recorded and opens a deviation by itself."""

    anchor: Identifier | None = None
    earliest_hours: Hours
    latest_hours: Hours
    critical: bool = False


class Step(_Strict):
    """One step of a unit operation (ISA-88 spirit): what to do, with what, who may do it, what to record."""

    id: Identifier
    name: Text
    instructions: Text
    equipment_class: Identifier | None = None
    qualification: Identifier
    second_person_verification: bool = False
    optional: bool = False  # may be skipped, with a reason and a signature (e.g. freezing a fresh product)
    expected_duration_min: Annotated[int, Field(gt=0, le=60 * 24 * 21)]
    window: TimeWindow | None = None
    parameters: list[Parameter] = []
    materials: list[Material] = []


class UnitOperation(_Strict):
    """An ordered group of steps (apheresis receipt, enrichment, transduction …)."""

    id: Identifier
    name: Text
    steps: Annotated[list[Step], Field(min_length=1)]


class MonitoredParameter(_Strict):
    """A process value an automated device reports continuously, with the limits that raise an
    alarm (A11-ALARM); ``unit`` is left out for unitless values such as pH."""

    id: Identifier
    name: Text
    unit: Unit | None = None
    alarm_min: Number | None = None
    alarm_max: Number | None = None
    physical: PhysicalBounds | None = None


class ProcessSection(_Strict):
    """The manufacturing process: unit operations in order, and what devices monitor."""

    unit_operations: Annotated[list[UnitOperation], Field(min_length=1)]
    #: The longest a batch may take from its start to its last step, in days: every time window
    #: must end inside it.
    max_duration_days: Annotated[Number | None, Field(gt=0, le=365)] = None
    #: From the end of manufacture to the product's release (QC results and the QP's certification),
    #: in hours: the booking of a patient's slots plans the infusion after it. Bounded by 60 days.
    release_lead_hours: Annotated[Number | None, Field(ge=0, le=24 * 60)] = None
    monitoring: list[MonitoredParameter] = []


class TemperatureLimits(_Strict):
    """An inclusive temperature range in °C (either end may be open)."""

    min: Number | None = None
    max: Number | None = None


class TransportSection(_Strict):
    """Temperature limits for the shipping legs of the chain of custody (data-logger excursions)."""

    apheresis: TemperatureLimits | None = None
    fresh_product: TemperatureLimits | None = None
    cryopreserved_product: TemperatureLimits | None = None


class ShelfLifeSection(_Strict):
    """How long the final product may be used after the end of manufacture, by how it is kept:
    the expiry printed on the final product's label (LABEL)."""

    fresh_product_hours: Annotated[Number | None, Field(gt=0)] = None
    cryopreserved_product_days: Annotated[Number | None, Field(gt=0)] = None


class Acceptance(_Strict):
    """An acceptance criterion: a range (``min``/``max``, inclusive) or an exact value (``equals``)."""

    min: Number | None = None
    max: Number | None = None
    equals: Scalar = None


class Attribute(_Strict):
    """A critical quality attribute of the specification."""

    id: Identifier
    name: Text
    method: Text
    unit: Unit | None = None
    acceptance: Acceptance
    physical: PhysicalBounds | None = None
    sample_point: Text
    sample_step: Identifier | None = None  # the step that takes the sample: no result is read before it
    release_critical: bool
    result_after_release: bool = False


class SpecificationSection(_Strict):
    """The release specification: critical quality attributes."""

    attributes: Annotated[list[Attribute], Field(min_length=1)]


class SiteAnnex(_Strict):
    """A site's permitted local differences, with the comparability evidence that supports them."""

    site: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=8)]
    differences: Text
    device: Identifier | None = None
    comparability_evidence: Text


#: Longest follow-up a schedule may plan: 15 years after infusion for integrating vectors (PAT-LTFU), and a margin.
FOLLOW_UP_MAX_DAY = 20 * 366
FOLLOW_UP_MODES = ("in_person", "phone", "questionnaire")


class FollowUpVisit(_Strict):
    """A time point of the patient's follow-up after infusion (PAT-LTFU): its label, the day after
    infusion (day 0), the days either side it may be done in, and how (in person; by phone or
    questionnaire where the product allows it, e.g. the later years of long-term follow-up)."""

    label: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    day: Annotated[int, Field(ge=1, le=FOLLOW_UP_MAX_DAY)]
    window_days: Annotated[int, Field(ge=0, le=180)] = 0
    mode: Literal["in_person", "phone", "questionnaire"] = "in_person"


#: At most this many eligibility criteria: a checklist a physician answers at one sitting.
MAX_ELIGIBILITY_CRITERIA = 60


class EligibilityCriterion(_Strict):
    """One criterion of the product's eligibility checklist, answered met / not met for a referral
    (the patients app). A ``required`` criterion not met makes the patient ineligible; one that is
    not required is recorded for the physician and the outcomes."""

    id: Identifier
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    required: bool = True


class MasterFileDocument(_Strict):
    """A whole master-file document."""

    product: ProductSection
    process: ProcessSection
    specification: SpecificationSection
    transport: TransportSection | None = None
    shelf_life: ShelfLifeSection | None = None
    site_annexes: list[SiteAnnex] = []
    follow_up: list[FollowUpVisit] | None = None
    eligibility: Annotated[list[EligibilityCriterion], Field(max_length=MAX_ELIGIBILITY_CRITERIA)] = []


# --- problems and where they are ----------------------------------------------------------------

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document: the line (1-based; 0 when unknown), the field path and the message."""

    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "document"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class DocumentError(ValueError):
    """The document is not a valid master file; ``problems`` says every place and why."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.line, p.path))
        super().__init__("; ".join(str(p) for p in self.problems))


def format_path(loc: Iterable[str | int]) -> str:
    """``("process", "unit_operations", 0, "id")`` → ``process.unit_operations[0].id``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Locator:
    """Finds the line of a path in the composed YAML node tree."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root

    def find(self, loc: Loc) -> tuple[int, Loc]:
        """The line of the deepest node on ``loc`` and the part of ``loc`` that was found."""
        node = self.root
        if node is None:
            return 0, ()
        found: list[str | int] = []
        for part in loc:
            child = self._child(node, part)
            if child is None:
                break
            node = child
            found.append(part)
        return node.start_mark.line + 1, tuple(found)

    def key_line(self, loc: Loc, key: str) -> int:
        """The line of the key ``key`` in the mapping at ``loc`` (for unknown fields)."""
        line, found = self.find(loc)
        if found != loc:
            return line
        node = self.root
        for part in loc:
            node = self._child(node, part) if node is not None else None
        if isinstance(node, yaml.MappingNode):
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                    return int(key_node.start_mark.line) + 1
        return line

    @staticmethod
    def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == part:
                    return value_node  # type: ignore[no-any-return]
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            return node.value[part]  # type: ignore[no-any-return]
        return None


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The schema model that describes the mapping at ``loc`` (to list its allowed fields)."""
    model: Any = MasterFileDocument
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        model = _unwrap(annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """``list[Step]`` → ``Step``; ``Step | None`` → ``Step``; ``Annotated[list[Step], …]`` → ``Step``."""
    for _ in range(5):
        origin = get_origin(annotation)
        if origin is None:
            return annotation
        args = [a for a in get_args(annotation) if a is not type(None)]
        if not args:
            return annotation
        annotation = args[0]
    return annotation


_TYPE_MESSAGES = {
    "string_type": "must be text (put it in quotes if it looks like a number or true/false)",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "list_type": "must be a list (each item on its own line starting with '- ')",
    "dict_type": "must be a mapping of fields (key: value lines)",
    "model_type": "must be a mapping of fields (key: value lines)",
    "model_attributes_type": "must be a mapping of fields (key: value lines)",
    "string_too_short": "must not be empty",
    "string_too_long": "is too long (at most 4,000 characters)",
}


def _pydantic_problems(exc: ValidationError, locator: _Locator) -> list[Problem]:
    problems: dict[tuple[int, str], Problem] = {}
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(err["loc"])
        kind = err["type"]
        ctx = err.get("ctx") or {}
        if kind == "extra_forbidden":
            key = str(loc[-1])
            parent = loc[:-1]
            model = _model_at(parent)
            allowed = ", ".join(model.model_fields) if model else ""
            message = f"unknown field {key!r}" + (f"; allowed here: {allowed}" if allowed else "")
            line = locator.key_line(parent, key)
            path = format_path(loc)
        elif kind == "missing":
            line, _ = locator.find(loc[:-1])
            message = f"{format_path(loc[-1:])!r} is required here but missing"
            path = format_path(loc)
        else:
            line, found = locator.find(loc)
            # Union members (e.g. "int", "float") appear in pydantic's path but not in the document.
            path = format_path(found if len(found) >= len(loc) - 1 else loc)
            if kind == "literal_error":
                options = _literal_options(loc) or [str(ctx.get("expected", ""))]
                message = f"{err.get('input')!r} is not allowed; use one of: {', '.join(options)}"
            elif kind == "value_error":
                message = str(ctx.get("error", err["msg"]))
            elif kind == "too_short":
                message = "must not be empty: list at least one item"
            elif kind == "greater_than":
                message = f"must be greater than {ctx.get('gt')}"
            elif kind == "greater_than_equal":
                message = f"must be at least {ctx.get('ge')}"
            elif kind == "less_than_equal":
                message = f"must be at most {ctx.get('le')}"
            elif kind in _TYPE_MESSAGES:
                message = _TYPE_MESSAGES[kind]
            else:
                message = str(err["msg"])
        problems.setdefault((line, path), Problem(line, path, message))
    return list(problems.values())


def _literal_options(loc: Loc) -> list[str]:
    """The allowed values of the literal field at ``loc``."""
    model = _model_at(loc[:-1])
    name = loc[-1]
    if model is None or not isinstance(name, str) or name not in model.model_fields:
        return []
    annotation = model.model_fields[name].annotation
    return [str(a) for a in get_args(annotation)]


# --- checks across fields -----------------------------------------------------------------------


def _semantic_problems(doc: MasterFileDocument, known_sites: Iterable[str] | None) -> list[tuple[Loc, str]]:
    found: list[tuple[Loc, str]] = []

    def unique(items: Iterable[tuple[Loc, str]], what: str) -> None:
        first: dict[str, Loc] = {}
        for loc, value in items:
            if value in first:
                found.append((loc, f"{what} {value!r} is used twice (first at {format_path(first[value])})"))
            else:
                first[value] = loc

    uo_base: Loc = ("process", "unit_operations")
    unique((((*uo_base, i, "id"), uo.id) for i, uo in enumerate(doc.process.unit_operations)),
           "unit-operation id")
    unique((((*uo_base, i, "steps", j, "id"), s.id)
            for i, uo in enumerate(doc.process.unit_operations) for j, s in enumerate(uo.steps)),
           "step id (step ids are unique across the whole process)")
    seen_steps: list[str] = []
    for i, uo in enumerate(doc.process.unit_operations):
        for j, st in enumerate(uo.steps):
            base: Loc = (*uo_base, i, "steps", j)
            unique((((*base, "parameters", k, "id"), p.id) for k, p in enumerate(st.parameters)),
                   f"parameter id in step {st.id!r}")
            unique((((*base, "materials", k, "code"), m.code) for k, m in enumerate(st.materials)),
                   f"material code in step {st.id!r}")
            for k, p in enumerate(st.parameters):
                typed = p if p.type != "derived" or p.source is None else p.model_copy(
                    update={"type": DERIVATIONS[p.source].value_type, "unit": DERIVATIONS[p.source].unit})
                found.extend(_parameter_problems(typed, (*base, "parameters", k)))
                found.extend(_lot_parameter_problems(p, st, (*base, "parameters", k)))
                found.extend(_derived_parameter_problems(p, st, (*base, "parameters", k), seen_steps))
            seen_steps.append(st.id)
            for k, m in enumerate(st.materials):
                if m.quantity <= 0:
                    found.append(((*base, "materials", k, "quantity"), "must be greater than 0"))
    found.extend(_window_problems(doc))
    unique(((("process", "monitoring", i, "id"), mon.id) for i, mon in enumerate(doc.process.monitoring)),
           "monitored parameter id")
    found.extend(_monitoring_problems(doc))
    if doc.transport is not None:
        for leg in ("apheresis", "fresh_product", "cryopreserved_product"):
            limits = getattr(doc.transport, leg)
            if limits is None:
                continue
            if limits.min is None and limits.max is None:
                found.append((("transport", leg), "give min, max or both (°C)"))
            elif limits.min is not None and limits.max is not None and limits.min > limits.max:
                found.append((("transport", leg, "min"), f"min {limits.min} is greater than max {limits.max}"))
    attrs: Loc = ("specification", "attributes")
    unique((((*attrs, i, "id"), a.id) for i, a in enumerate(doc.specification.attributes)), "attribute id")
    step_ids = [s.id for uo in doc.process.unit_operations for s in uo.steps]
    for i, a in enumerate(doc.specification.attributes):
        found.extend(_acceptance_problems(a, (*attrs, i)))
        if a.sample_step is not None and a.sample_step not in step_ids:
            found.append(((*attrs, i, "sample_step"), f"there is no step {a.sample_step!r} in the process; "
                                                      f"steps: {', '.join(step_ids)}"))
    unique(((("site_annexes", i, "site"), an.site) for i, an in enumerate(doc.site_annexes)), "annex site")
    found.extend(_follow_up_problems(doc))
    unique(((("eligibility", i, "id"), c.id) for i, c in enumerate(doc.eligibility)), "eligibility criterion id")
    if known_sites is not None:
        known = sorted(set(known_sites))
        for i, an in enumerate(doc.site_annexes):
            if an.site not in known:
                found.append((("site_annexes", i, "site"),
                              f"there is no site {an.site!r} in the network; known sites: {', '.join(known)}"))
    return found


def _follow_up_problems(doc: MasterFileDocument) -> list[tuple[Loc, str]]:
    """Follow-up time points in order of day, each day and label once, and windows that do not reach
    into the next visit's (a visit done then could not be told from the next)."""
    found: list[tuple[Loc, str]] = []
    visits = doc.follow_up or []
    seen_days: dict[int, int] = {}
    seen_labels: dict[str, int] = {}
    for i, visit in enumerate(visits):
        if visit.day in seen_days:
            found.append((("follow_up", i, "day"),
                          f"day {visit.day} is planned twice (first at follow_up[{seen_days[visit.day]}])"))
        seen_days.setdefault(visit.day, i)
        if visit.label in seen_labels:
            found.append((("follow_up", i, "label"), f"label {visit.label!r} is used twice (first at "
                                                     f"follow_up[{seen_labels[visit.label]}])"))
        seen_labels.setdefault(visit.label, i)
        if i and visit.day <= visits[i - 1].day:
            found.append((("follow_up", i, "day"), f"list the visits in order of day: day {visit.day} comes after "
                                                   f"day {visits[i - 1].day}"))
        elif i and visits[i - 1].day + visits[i - 1].window_days >= visit.day - visit.window_days:
            found.append((("follow_up", i, "window_days"), f"the window of day {visit.day} (± {visit.window_days}) "
                                                           f"overlaps the window of day {visits[i - 1].day} "
                                                           f"(± {visits[i - 1].window_days}); narrow one"))
        if visit.window_days >= visit.day:
            found.append((("follow_up", i, "window_days"),
                          f"the window (± {visit.window_days} days) reaches back to the infusion; at most "
                          f"{visit.day - 1} days for day {visit.day}"))
    return found


def _parameter_problems(p: Parameter, loc: Loc) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    numeric = p.type in NUMERIC_TYPES
    if numeric:
        if p.unit is None:
            out.append(((*loc, "unit"), f"a {p.type} parameter needs a unit; use one of: {', '.join(UNITS)}"))
        for name in ("min", "max", "target"):
            value = getattr(p, name)
            if value is None:
                continue
            if name == "target" and (isinstance(value, bool) or not isinstance(value, int | float)):
                out.append(((*loc, name), f"the target of a {p.type} parameter must be a number"))
            elif p.type == "integer" and isinstance(value, float) and not value.is_integer():
                out.append(((*loc, name), "an integer parameter takes whole numbers only"))
        if p.min is not None and p.max is not None and p.min > p.max:
            out.append(((*loc, "min"), f"min {p.min} is greater than max {p.max}"))
        elif isinstance(p.target, int | float) and not isinstance(p.target, bool) and (
            (p.min is not None and p.target < p.min) or (p.max is not None and p.target > p.max)
        ):
            low = "−∞" if p.min is None else p.min
            high = "+∞" if p.max is None else p.max
            out.append(((*loc, "target"), f"target {p.target} is outside the range [{low}, {high}]"))
        if p.choices is not None:
            out.append(((*loc, "choices"), "choices apply only to parameters of type choice"))
        out.extend(_physical_problems(p, loc, ("min", "max", "target")))
    else:
        for name in ("min", "max", "physical"):
            if getattr(p, name) is not None:
                out.append(((*loc, name), f"{name} applies only to number or integer parameters, not {p.type}"))
        if p.type == "choice":
            if not p.choices:
                out.append(((*loc, "choices"), "a choice parameter needs a list of choices"))
            elif len(set(p.choices)) != len(p.choices):
                out.append(((*loc, "choices"), "each choice may appear only once"))
            elif p.target is not None and p.target not in p.choices:
                out.append(((*loc, "target"), f"target {p.target!r} is not one of the choices: {', '.join(p.choices)}"))
        elif p.choices is not None:
            out.append(((*loc, "choices"), "choices apply only to parameters of type choice"))
        if p.type == "boolean" and p.target is not None and not isinstance(p.target, bool):
            out.append(((*loc, "target"), "the target of a boolean parameter is true or false"))
        if p.type == "text" and p.target is not None and not isinstance(p.target, str):
            out.append(((*loc, "target"), "the target of a text parameter must be text"))
    return out


def _monitoring_problems(doc: MasterFileDocument) -> list[tuple[Loc, str]]:
    """Each monitored value has a sound alarm range inside its physical bounds."""
    found: list[tuple[Loc, str]] = []
    for i, mon in enumerate(doc.process.monitoring):
        where: Loc = ("process", "monitoring", i)
        if mon.alarm_min is None and mon.alarm_max is None:
            found.append((where, "a monitored parameter needs alarm_min, alarm_max or both"))
        elif mon.alarm_min is not None and mon.alarm_max is not None and mon.alarm_min > mon.alarm_max:
            found.append(((*where, "alarm_min"),
                          f"alarm_min {mon.alarm_min} is greater than alarm_max {mon.alarm_max}"))
        found.extend(_physical_problems(mon, where, ("alarm_min", "alarm_max")))
    return found


def _lot_parameter_problems(p: Parameter, st: Step, loc: Loc) -> list[tuple[Loc, str]]:
    """A ``lot`` parameter names one of its step's materials; ``material`` belongs to lots only."""
    codes = [m.code for m in st.materials]
    if p.type != "lot":
        return [((*loc, "material"), "material applies only to parameters of type lot")] if p.material else []
    if p.material is None:
        return [((*loc, "material"), "a lot parameter names the material whose lot it is; this step's materials: "
                                     f"{', '.join(codes) or 'none'}")]
    if p.material not in codes:
        return [((*loc, "material"), f"the step {st.id!r} uses no material {p.material!r}; its materials: "
                                     f"{', '.join(codes) or 'none'}")]
    if p.unit is not None or p.target is not None or p.choices is not None:
        return [(loc, "a lot parameter takes no unit, target or choices: its value is the lot chosen")]
    return []


def _derived_parameter_problems(p: Parameter, st: Step, loc: Loc, earlier: list[str]) -> list[tuple[Loc, str]]:
    """A ``derived`` parameter names one of the derivations as its ``source``, in that
    derivation's unit; ``source`` and ``anchor`` belong to derived parameters only, and an anchor
    is an earlier step of the process."""
    sources = ", ".join(DERIVATIONS)
    if p.type != "derived":
        return [((*loc, name), f"{name} applies only to parameters of type derived")
                for name in ("source", "anchor") if getattr(p, name) is not None]
    if p.source is None:
        return [((*loc, "source"), f"a derived parameter names the record its value is read from; use one of: "
                                   f"{sources}")]
    derivation = DERIVATIONS[p.source]
    out: list[tuple[Loc, str]] = []
    if p.unit != derivation.unit:
        out.append(((*loc, "unit"), f"the source {p.source!r} gives its value in "
                                    + (f"{derivation.unit!r}" if derivation.unit else "no unit")
                                    + (f"; write unit: {derivation.unit}" if derivation.unit else "; leave unit out")))
    if p.anchor is not None and p.source != "culture_day":
        out.append(((*loc, "anchor"), "anchor applies only to the source culture_day"))
    elif p.anchor is not None and p.anchor not in earlier:
        out.append(((*loc, "anchor"), f"the anchor {p.anchor!r} is not an earlier step; anchor on one of: "
                                      f"{', '.join(earlier) or 'none (leave anchor out: the batch start)'}"))
    return out


def value_type(parameter: dict[str, Any]) -> str:
    """The type of the value a parameter records: a derived one's is its source's."""
    if parameter.get("type") == "derived" and parameter.get("source") in DERIVATIONS:
        return DERIVATIONS[str(parameter["source"])].value_type
    return str(parameter.get("type"))


def _window_problems(doc: MasterFileDocument) -> list[tuple[Loc, str]]:
    """Each time window is a sound range, anchored on a step that comes earlier, and ends inside
    the process's longest duration (counted from the batch start along the anchors)."""
    out: list[tuple[Loc, str]] = []
    limit_h = float(doc.process.max_duration_days) * 24 if doc.process.max_duration_days is not None else None
    seen: list[str] = []
    ends: dict[str, float] = {}  # step id: the latest it may be performed, in hours after the batch start
    for i, uo in enumerate(doc.process.unit_operations):
        for j, st in enumerate(uo.steps):
            w, loc = st.window, ("process", "unit_operations", i, "steps", j, "window")
            if w is not None:
                if w.latest_hours < w.earliest_hours:
                    out.append(((*loc, "latest_hours"), f"latest_hours {w.latest_hours} is before earliest_hours "
                                                        f"{w.earliest_hours}"))
                if w.anchor is not None and w.anchor not in seen:
                    where = "is this step itself" if w.anchor == st.id else (
                        "comes later in the process" if w.anchor in _all_step_ids(doc) else "is not in the process")
                    out.append(((*loc, "anchor"), f"the anchor {w.anchor!r} {where}; anchor on an earlier step: "
                                                  f"{', '.join(seen) or 'none (leave anchor out: the batch start)'}"))
                else:
                    end = (ends.get(w.anchor, 0.0) if w.anchor else 0.0) + float(w.latest_hours)
                    ends[st.id] = end
                    if limit_h is not None and end > limit_h:
                        out.append(((*loc, "latest_hours"), f"the window ends {end:g} h after the batch start, "
                                                            f"beyond the process's max_duration_days "
                                                            f"{doc.process.max_duration_days} ({limit_h:g} h)"))
            elif st.id not in ends:
                ends[st.id] = max(ends.values(), default=0.0)
            seen.append(st.id)
    return out


def _all_step_ids(doc: MasterFileDocument) -> list[str]:
    return [s.id for uo in doc.process.unit_operations for s in uo.steps]


def _acceptance_problems(a: Attribute, loc: Loc) -> list[tuple[Loc, str]]:
    out: list[tuple[Loc, str]] = []
    acc = a.acceptance
    where: Loc = (*loc, "acceptance")
    if acc.min is None and acc.max is None and acc.equals is None:
        out.append((where, "an acceptance criterion needs at least one of min, max or equals"))
    if acc.equals is not None and (acc.min is not None or acc.max is not None):
        out.append(((*where, "equals"), "use either equals or a min/max range, not both"))
    if acc.min is not None and acc.max is not None and acc.min > acc.max:
        out.append(((*where, "min"), f"min {acc.min} is greater than max {acc.max}"))
    if (acc.min is not None or acc.max is not None) and a.unit is None:
        out.append(((*loc, "unit"), f"a numeric acceptance range needs a unit; use one of: {', '.join(UNITS)}"))
    out.extend(_physical_problems(a, loc, ()))
    bounds = plausibility.physical_bounds(a.model_dump())
    for name in ("min", "max", "equals"):
        value = getattr(acc, name)
        if isinstance(value, int | float) and not isinstance(value, bool) and plausibility.outside(value, bounds):
            out.append(((*where, name), f"{value} is outside the physical range "
                                        f"{plausibility.bounds_text(bounds, a.unit or '')}"))
    return out


def _physical_problems(item: Parameter | MonitoredParameter | Attribute, loc: Loc,
                       limits: tuple[str, ...]) -> list[tuple[Loc, str]]:
    """``physical`` is a sound range, and the item's limits and target lie inside the physical
    bounds (stated, or those of the unit)."""
    out: list[tuple[Loc, str]] = []
    phys = item.physical
    if phys is not None:
        if phys.min is None and phys.max is None:
            out.append(((*loc, "physical"), "give min, max or both (what a value can possibly be)"))
        elif phys.min is not None and phys.max is not None and phys.min > phys.max:
            out.append(((*loc, "physical", "min"), f"min {phys.min} is greater than max {phys.max}"))
            return out
    bounds = plausibility.physical_bounds(item.model_dump())
    for name in limits:
        value = getattr(item, name)
        if isinstance(value, int | float) and not isinstance(value, bool) and plausibility.outside(value, bounds):
            out.append(((*loc, name), f"{name} {value} is outside the physical range "
                                      f"{plausibility.bounds_text(bounds, item.unit or '')}"))
    return out


# --- parsing ----------------------------------------------------------------------------------------


def _duplicate_keys(node: yaml.Node | None, loc: Loc = ()) -> Iterator[Problem]:
    """YAML quietly keeps the last of two equal keys; a master file must not."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                yield Problem(key_node.start_mark.line + 1, format_path((*loc, key)),
                              f"the key {key!r} appears twice in the same mapping")
            seen.add(key)
            yield from _duplicate_keys(value_node, (*loc, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*loc, i))


def parse_document(text: str, *, known_sites: Iterable[str] | None = None) -> MasterFileDocument:
    """Parse and validate a master-file document; raise :class:`DocumentError` naming every problem.

    ``known_sites``, when given, are the site codes a site annex may name.
    """
    if not isinstance(text, str) or not text.strip():
        raise DocumentError([Problem(1, "", "the document is empty; it needs product, process and specification")])
    try:
        # Size, depth, aliases ("billion laughs") and number size are bounded, and libyaml parses:
        # a 400 KB document is read or refused in well under a second (pocare.core.yamlsafe).
        root, data = yamlsafe.load(text)
    except yamlsafe.YamlRefused as exc:
        raise DocumentError([Problem(exc.line, "", exc.message)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        what = exc.problem or exc.context or "unreadable YAML"
        if exc.context and exc.problem and exc.context_mark is not None:
            what += f" ({exc.context} started on line {exc.context_mark.line + 1})"
        raise DocumentError([Problem(line, "", f"YAML syntax error: {what}")]) from None
    except yaml.YAMLError as exc:
        raise DocumentError([Problem(0, "", f"YAML syntax error: {exc}")]) from None
    if not isinstance(data, dict):
        raise DocumentError([Problem(1, "", "the document must be a mapping with product, process and specification")])
    locator = _Locator(root)
    duplicates = list(_duplicate_keys(root))
    if duplicates:
        raise DocumentError(duplicates)
    try:
        doc = MasterFileDocument.model_validate(data)
    except ValidationError as exc:
        raise DocumentError(_pydantic_problems(exc, locator)) from None
    semantic = _semantic_problems(doc, known_sites)
    if semantic:
        raise DocumentError([Problem(locator.find(loc)[0], format_path(loc), message) for loc, message in semantic])
    return doc


def document_content(doc: MasterFileDocument) -> dict[str, Any]:
    """The validated document as plain JSON-ready data (what a version stores in ``content``)."""
    return doc.model_dump(mode="json")


# --- reading a version's content ---------------------------------------------------------------


def iter_steps(content: dict[str, Any]) -> list[dict[str, Any]]:
    """Every step of the process in order, each a copy of the step with its ``unit_operation`` id."""
    return [
        {**step, "unit_operation": uo["id"]}
        for uo in content.get("process", {}).get("unit_operations", [])
        for step in uo.get("steps", [])
    ]


def step(content: dict[str, Any], step_id: str) -> dict[str, Any] | None:
    """The step ``step_id`` (with its ``unit_operation`` id), or ``None`` when the version has no such step."""
    return next((s for s in iter_steps(content) if s["id"] == step_id), None)


def eligibility_criteria(content: dict[str, Any]) -> list[dict[str, Any]]:
    """The version's eligibility checklist (``[{id, text, required}]``), empty when it has none."""
    return list(content.get("eligibility") or [])


def step_ids(content: dict[str, Any]) -> list[str]:
    """The ids of every step, in process order."""
    return [s["id"] for s in iter_steps(content)]
