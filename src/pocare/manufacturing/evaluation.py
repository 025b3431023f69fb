"""Checking a recorded value against the master file: parse it as the parameter's type, check its
unit, and say whether it lies in the acceptable range (or matches the target). Also a QC result
against its acceptance criterion.

Pure module (no Django import): the batch record, the API, the demo and the benchmarks use the
same rules, and they can be tested on their own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pocare.masterfile import plausibility

_TRUE = {"true", "yes", "y", "1", "pass", "passed"}
_FALSE = {"false", "no", "n", "0", "fail", "failed"}


class ValueRefused(ValueError):
    """The value cannot be recorded for this parameter; the message says what is allowed."""


def _physical(spec: dict[str, Any], value: float, name: Any) -> None:
    """Refuse a value outside the physical bounds of ``spec`` (it cannot be a measurement)."""
    try:
        plausibility.check_physical(spec, value, name=str(name))
    except plausibility.Implausible as exc:
        raise ValueRefused(str(exc)) from None


@dataclass(frozen=True)
class Evaluation:
    """A value as it will be stored, whether it is acceptable (None when the parameter sets no
    range or target) and, when it is not, a sentence saying why."""

    value: Any
    in_range: bool | None
    message: str = ""


def _range_text(low: Any, high: Any, unit: str) -> str:
    u = f" {unit}" if unit else ""
    if low is not None and high is not None:
        return f"{low}–{high}{u}" if low != high else f"exactly {low}{u}"
    if low is not None:
        return f"at least {low}{u}"
    return f"at most {high}{u}"


def parse_value(spec: dict[str, Any], raw: Any) -> Any:
    """``raw`` (text from a form, or a JSON value from the API) as the parameter's type."""
    kind = spec.get("type")
    name = spec.get("name") or spec.get("id")
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise ValueRefused(f"{name}: a value is required.")
    if kind in ("number", "integer"):
        if isinstance(raw, bool):
            raise ValueRefused(f"{name}: {raw!r} is not a number.")
        try:
            number = float(raw.strip().replace(",", ".")) if isinstance(raw, str) else float(raw)
        except (TypeError, ValueError):
            raise ValueRefused(f"{name}: {raw!r} is not a number; enter digits such as 92.5.") from None
        if not math.isfinite(number):
            raise ValueRefused(f"{name}: the value must be a finite number.")
        if kind == "integer":
            if not number.is_integer():
                raise ValueRefused(f"{name}: {raw!r} is not a whole number.")
            return int(number)
        return number
    if kind == "boolean":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueRefused(f"{name}: answer yes or no (true/false), not {raw!r}.")
    if kind == "choice":
        choices = [str(c) for c in spec.get("choices") or []]
        text = str(raw).strip()
        if text not in choices:
            raise ValueRefused(f"{name}: {raw!r} is not one of the choices: {', '.join(choices)}.")
        return text
    try:  # a text parameter takes text: not a list, a mapping, a number, nor control characters
        return plausibility.check_text(raw, name=str(name))
    except plausibility.Implausible as exc:
        raise ValueRefused(str(exc)) from None


def evaluate_parameter(spec: dict[str, Any], raw: Any, unit: str | None = None) -> Evaluation:
    """Parse ``raw`` for the parameter ``spec`` (a step parameter of the master file) and check it.

    ``unit``, when the caller states one (a device or API client), must be the parameter's unit.
    """
    name = spec.get("name") or spec.get("id")
    expected_unit = spec.get("unit") or ""
    if unit not in (None, "") and unit != expected_unit:
        allowed = f"{expected_unit!r}" if expected_unit else "no unit"
        raise ValueRefused(f"{name}: the unit {unit!r} is wrong; this parameter is recorded in {allowed}.")
    value = parse_value(spec, raw)
    kind = spec.get("type")
    if kind in ("number", "integer"):
        _physical(spec, value, name)
        low, high = spec.get("min"), spec.get("max")
        if low is None and high is None:
            return Evaluation(value, None)
        ok = (low is None or value >= low) and (high is None or value <= high)
        if ok:
            return Evaluation(value, True)
        return Evaluation(value, False, f"{name} = {value:g} {expected_unit}".rstrip()
                          + f" is outside the acceptable range ({_range_text(low, high, expected_unit)}).")
    target = spec.get("target")
    if kind in ("boolean", "choice") and target is not None:
        if value == target:
            return Evaluation(value, True)
        shown = {True: "yes", False: "no"}.get(value, value) if isinstance(value, bool) else value
        wanted = {True: "yes", False: "no"}.get(target, target) if isinstance(target, bool) else target
        return Evaluation(value, False, f"{name} is {shown!r}; the master file requires {wanted!r}.")
    return Evaluation(value, None)


@dataclass(frozen=True)
class QcEvaluation:
    number: float | None
    text: str
    conforms: bool
    message: str


def evaluate_qc(attribute: dict[str, Any], raw: Any, unit: str | None = None) -> QcEvaluation:
    """A QC result for a specification ``attribute`` against its acceptance criterion
    (``min``/``max`` inclusive, or ``equals`` for qualitative results such as 'no growth')."""
    name = attribute.get("name") or attribute.get("id")
    acceptance = attribute.get("acceptance") or {}
    expected_unit = attribute.get("unit") or ""
    if unit not in (None, "") and unit != expected_unit:
        allowed = f"{expected_unit!r}" if expected_unit else "no unit"
        raise ValueRefused(f"{name}: the unit {unit!r} is wrong; this attribute is reported in {allowed}.")
    equals = acceptance.get("equals")
    if equals is not None and not isinstance(equals, int | float):
        if raw is None or not str(raw).strip():
            raise ValueRefused(f"{name}: a result is required.")
        try:
            text = plausibility.check_text(raw, name=str(name), max_length=100)
        except plausibility.Implausible as exc:
            raise ValueRefused(str(exc)) from None
        conforms = text.lower() == str(equals).lower()
        return QcEvaluation(None, text, conforms, "" if conforms else
                            f"{name}: {text!r} does not meet the specification ({equals!r}).")
    number = parse_value({"type": "number", "name": name}, raw)
    _physical(attribute, number, name)
    low, high = acceptance.get("min"), acceptance.get("max")
    if equals is not None:
        conforms = number == equals
        criterion = f"exactly {equals}"
    else:
        conforms = (low is None or number >= low) and (high is None or number <= high)
        criterion = _range_text(low, high, expected_unit)
    return QcEvaluation(number, "", conforms, "" if conforms else
                        f"{name} = {number:g} {expected_unit}".rstrip() + f" is out of specification ({criterion}).")
