"""ASTCT consensus grading of cytokine release syndrome (CRS) and immune effector cell-associated
neurotoxicity syndrome (ICANS) from their recorded inputs (PAT-GRADE). Pure Python, no Django.

Source: Lee DW et al., *ASTCT Consensus Grading for Cytokine Release Syndrome and Neurologic Toxicity
Associated with Immune Effector Cells*, Biol Blood Marrow Transplant 2019;25:625–638 (Tables 3–5).

The grade is never typed: it is computed here from the inputs, with one sentence per finding that
names the input and the rule it met, so that a reader can check the grade against the table.

**CRS** (Table 3). Fever is a temperature ≥ 38.0 °C. CRS needs a fever; after a documented fever,
antipyretics or anti-cytokine therapy (tocilizumab, corticosteroids) may mask it, and the grade is
then driven by hypotension and hypoxia alone (``fever_masked``). With fever:

* grade 1 — no hypotension, no hypoxia;
* grade 2 — hypotension not requiring vasopressors, and/or oxygen by low-flow nasal cannula
  (≤ 6 L/min) or blow-by;
* grade 3 — hypotension requiring one vasopressor, with or without vasopressin, and/or oxygen by
  high-flow nasal cannula (> 6 L/min), facemask, non-rebreather mask or Venturi mask;
* grade 4 — hypotension requiring multiple vasopressors (vasopressin does not count toward
  "multiple"), and/or positive pressure (CPAP, BiPAP, intubation and mechanical ventilation).

The grade is that of the more severe of hypotension and hypoxia. A nasal cannula is low- or high-flow
by its flow alone, so its flow must be given.

**ICANS** (Tables 4 and 5). The ICE score (orientation to year, month, city and hospital 4 points;
naming three objects 3; following simple commands 1; writing a standard sentence 1; counting back
from 100 by ten 1; total 0–10) grades 1 at 7–9, 2 at 3–6, 3 at 0–2 and 4 at 0 when the patient is
unarousable and cannot be assessed. Depressed consciousness: 1 awakens spontaneously, 2 awakens to
voice, 3 awakens only to touch, 4 unarousable or needing vigorous or repeated touch (stupor, coma).
Seizures: 3 any clinical seizure that resolves rapidly or a non-convulsive seizure on EEG that
resolves with intervention, 4 a life-threatening prolonged seizure (> 5 min) or repeated seizures
without return to baseline. Motor findings: 4 deep focal motor weakness (hemiparesis, paraparesis).
Raised intracranial pressure / cerebral oedema: 3 focal or local oedema on neuroimaging, 4 diffuse
oedema, decerebrate or decorticate posturing, cranial nerve VI palsy, papilloedema or Cushing's
triad. The ICANS grade is that of the most severe domain; ICE 10 with nothing else is no ICANS.

Inputs outside what a living patient can show (a temperature outside 30–45 °C, an oxygen flow outside
0–80 L/min, a negative count, an unknown device or finding) raise :class:`GradingInputError`, a
``ValueError`` that names the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def gettext_noop(message: str) -> str:
    """Marks a label for the translation catalogues and returns it unchanged (as Django's, which this
    pure module may not import: ``makemessages`` finds the calls by name; pages translate on display)."""
    return message


FEVER_C = 38.0
TEMPERATURE_RANGE_C = (30.0, 45.0)
FLOW_RANGE_L_MIN = (0.0, 80.0)
LOW_FLOW_MAX_L_MIN = 6.0
MAX_VASOPRESSORS = 10

#: Oxygen devices and the CRS grade their use alone reaches (the nasal cannula is graded by its flow).
OXYGEN_DEVICES: dict[str, str] = {
    "none": gettext_noop("no supplemental oxygen"),
    "nasal_cannula": gettext_noop("nasal cannula"),
    "blow_by": gettext_noop("blow-by oxygen"),
    "facemask": gettext_noop("facemask"),
    "non_rebreather": gettext_noop("non-rebreather mask"),
    "venturi": gettext_noop("Venturi mask"),
    "cpap": gettext_noop("CPAP"),
    "bipap": gettext_noop("BiPAP"),
    "mechanical_ventilation": gettext_noop("intubation and mechanical ventilation"),
}
_DEVICE_GRADE = {"none": 0, "blow_by": 2, "facemask": 3, "non_rebreather": 3, "venturi": 3,
                 "cpap": 4, "bipap": 4, "mechanical_ventilation": 4}

#: The ICE score's items and their maximum points (Table 4).
ICE_ITEMS: dict[str, tuple[int, str]] = {
    "orientation": (4, "orientation to year, month, city and hospital"),
    "naming": (3, "naming three objects"),
    "commands": (1, "following simple commands"),
    "writing": (1, "writing a standard sentence"),
    "attention": (1, "counting backwards from 100 by ten"),
}

#: Level of consciousness and its ICANS grade.
CONSCIOUSNESS: dict[str, tuple[int, str]] = {
    "alert": (0, gettext_noop("alert")),
    "awakens_spontaneously": (1, gettext_noop("drowsy, awakens spontaneously")),
    "awakens_to_voice": (2, gettext_noop("awakens to voice")),
    "awakens_to_touch": (3, gettext_noop("awakens only to tactile stimulus")),
    "unarousable": (4, gettext_noop("unarousable or needs vigorous or repetitive tactile stimuli to arouse "
                                    "(stupor or coma)")),
}
SEIZURES: dict[str, tuple[int, str]] = {
    "none": (0, gettext_noop("no seizure")),
    "resolved": (3, gettext_noop("a clinical seizure that resolved rapidly, or a non-convulsive seizure on EEG "
                                 "that resolved with intervention")),
    "prolonged": (4, gettext_noop("a life-threatening prolonged seizure (> 5 min) or repetitive seizures without "
                                  "return to baseline in between")),
}
MOTOR: dict[str, tuple[int, str]] = {
    "none": (0, gettext_noop("no motor findings")),
    "deep_focal_weakness": (4, gettext_noop("deep focal motor weakness such as hemiparesis or paraparesis")),
}
RAISED_ICP: dict[str, tuple[int, str]] = {
    "none": (0, gettext_noop("no sign of raised intracranial pressure or cerebral oedema")),
    "focal_oedema": (3, gettext_noop("focal or local oedema on neuroimaging")),
    "diffuse_oedema": (4, gettext_noop("diffuse cerebral oedema on neuroimaging")),
    "posturing": (4, gettext_noop("decerebrate or decorticate posturing")),
    "cranial_nerve_vi_palsy": (4, gettext_noop("cranial nerve VI palsy")),
    "papilloedema": (4, gettext_noop("papilloedema")),
    "cushings_triad": (4, gettext_noop("Cushing's triad")),
}

CRS_FIELDS = ("temperature_c", "fever_masked", "hypotension", "vasopressors", "vasopressin", "oxygen_device",
              "oxygen_flow_l_min")
ICANS_FIELDS = (*ICE_ITEMS, "consciousness", "seizure", "motor", "raised_icp")


class GradingInputError(ValueError):
    """An input no patient can show, or one the grading cannot read; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Grade:
    """A computed grade (0 = none) with one sentence per finding that decided or informed it."""

    grade: int
    reasons: tuple[str, ...]
    inputs: Mapping[str, Any]


def _unknown(inputs: Mapping[str, Any], known: tuple[str, ...]) -> None:
    for key in inputs:
        if key not in known:
            raise GradingInputError(str(key)[:40], f"not an input of this grading; the inputs are {', '.join(known)}.")


def _bool(inputs: Mapping[str, Any], field: str) -> bool:
    value = inputs.get(field, False)
    if isinstance(value, bool):
        return value
    if value in (None, "", 0, "0", "false", "False", "off", "no"):
        return False
    if value in (1, "1", "true", "True", "on", "yes"):
        return True
    raise GradingInputError(field, "answer yes or no.")


def _number(inputs: Mapping[str, Any], field: str, low: float, high: float, what: str) -> float | None:
    value = inputs.get(field)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise GradingInputError(field, f"give {what} as a number.")
    if isinstance(value, str) and len(value) > 20:
        raise GradingInputError(field, f"{what} is between {low:g} and {high:g}.")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise GradingInputError(field, f"give {what} as a number.") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise GradingInputError(field, f"{what} is between {low:g} and {high:g}.")
    return number


def _count(inputs: Mapping[str, Any], field: str, high: int, what: str) -> int:
    value = inputs.get(field, 0)
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise GradingInputError(field, f"give {what} as a whole number.")
    if isinstance(value, str) and len(value) > 6:
        raise GradingInputError(field, f"{what} is a whole number from 0 to {high}.")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise GradingInputError(field, f"give {what} as a whole number.") from None
    if isinstance(value, float) and value != number:
        raise GradingInputError(field, f"give {what} as a whole number.")
    if not 0 <= number <= high:
        raise GradingInputError(field, f"{what} is a whole number from 0 to {high}.")
    return number


def _choice(inputs: Mapping[str, Any], field: str, options: Mapping[str, Any], default: str) -> str:
    value = inputs.get(field, default)
    if value in (None, ""):
        value = default
    if not isinstance(value, str) or value not in options:
        raise GradingInputError(field, f"choose one of {', '.join(options)}.")
    return value


def crs_grade(inputs: Mapping[str, Any]) -> Grade:
    """The ASTCT CRS grade (0–4) of ``inputs``: ``temperature_c`` (°C, or None when not measured),
    ``fever_masked`` (a documented fever now masked by antipyretics or anti-cytokine therapy),
    ``hypotension``, ``vasopressors`` (how many, vasopressin not counted), ``vasopressin``,
    ``oxygen_device`` (one of :data:`OXYGEN_DEVICES`) and ``oxygen_flow_l_min``."""
    _unknown(inputs, CRS_FIELDS)
    temperature = _number(inputs, "temperature_c", *TEMPERATURE_RANGE_C, "the temperature in °C")
    masked = _bool(inputs, "fever_masked")
    hypotension = _bool(inputs, "hypotension")
    vasopressors = _count(inputs, "vasopressors", MAX_VASOPRESSORS, "the number of vasopressors")
    vasopressin = _bool(inputs, "vasopressin")
    device = _choice(inputs, "oxygen_device", OXYGEN_DEVICES, "none")
    flow = _number(inputs, "oxygen_flow_l_min", *FLOW_RANGE_L_MIN, "the oxygen flow in L/min")
    if device == "nasal_cannula" and flow is None:
        raise GradingInputError("oxygen_flow_l_min", "give the flow of the nasal cannula in L/min: at most "
                                                     f"{LOW_FLOW_MAX_L_MIN:g} L/min is low-flow, above it high-flow.")
    if device == "none" and flow:
        raise GradingInputError("oxygen_flow_l_min", "an oxygen flow needs an oxygen device; choose the device.")
    normal = {"temperature_c": temperature, "fever_masked": masked, "hypotension": hypotension,
              "vasopressors": vasopressors, "vasopressin": vasopressin, "oxygen_device": device,
              "oxygen_flow_l_min": flow}

    reasons: list[str] = []
    fever = temperature is not None and temperature >= FEVER_C
    if fever:
        reasons.append(f"Temperature {temperature:.1f} °C is a fever (≥ {FEVER_C:.1f} °C).")
    elif masked:
        reasons.append("Fever documented before and now masked by antipyretics or anti-cytokine therapy: "
                       "fever is no longer required, hypotension and hypoxia drive the grade.")
    else:
        shown = f"Temperature {temperature:.1f} °C is no fever" if temperature is not None else "No temperature given"
        reasons.append(f"{shown} (< {FEVER_C:.1f} °C) and no masked fever: ASTCT grades CRS only with fever, "
                       "so this is not CRS (grade 0).")
        return Grade(0, tuple(reasons), normal)

    # Hypotension: vasopressors are given for hypotension, so they imply it.
    pressure_grade = 0
    if vasopressors >= 2:
        pressure_grade = 4
        reasons.append(f"Hypotension requiring {vasopressors} vasopressors (multiple, vasopressin not counted) "
                       "is grade 4.")
    elif vasopressors == 1 or vasopressin:
        pressure_grade = 3
        given = "one vasopressor" + (" with vasopressin" if vasopressors == 1 and vasopressin else "")
        if vasopressors == 0:
            given = "vasopressin alone (one vasopressor)"
        reasons.append(f"Hypotension requiring {given} is grade 3; vasopressin does not count toward multiple.")
    elif hypotension:
        pressure_grade = 2
        reasons.append("Hypotension not requiring vasopressors is grade 2.")

    oxygen_grade = _DEVICE_GRADE.get(device, 0)
    if device == "nasal_cannula":
        assert flow is not None
        if flow <= LOW_FLOW_MAX_L_MIN:
            oxygen_grade = 2
            reasons.append(f"Oxygen by low-flow nasal cannula ({flow:g} L/min, ≤ {LOW_FLOW_MAX_L_MIN:g} L/min) "
                           "is grade 2.")
        else:
            oxygen_grade = 3
            reasons.append(f"Oxygen by high-flow nasal cannula ({flow:g} L/min, > {LOW_FLOW_MAX_L_MIN:g} L/min) "
                           "is grade 3.")
    elif oxygen_grade == 2:
        reasons.append(f"Oxygen by {OXYGEN_DEVICES[device]} is hypoxia of grade 2.")
    elif oxygen_grade == 3:
        reasons.append(f"Oxygen by {OXYGEN_DEVICES[device]} is hypoxia of grade 3.")
    elif oxygen_grade == 4:
        reasons.append(f"Positive-pressure ventilation ({OXYGEN_DEVICES[device]}) is grade 4.")

    grade = max(pressure_grade, oxygen_grade)
    if grade == 0:
        if not fever:
            reasons.append("With a masked fever and neither hypotension nor hypoxia, CRS is grade 1.")
        else:
            reasons.append("Fever without hypotension or hypoxia is grade 1.")
        grade = 1
    elif pressure_grade and oxygen_grade:
        reasons.append(f"The grade is that of the more severe of hypotension and hypoxia: {grade}.")
    return Grade(grade, tuple(reasons), normal)


def icans_grade(inputs: Mapping[str, Any]) -> Grade:
    """The ASTCT ICANS grade (0–4) of ``inputs``: the ICE items (:data:`ICE_ITEMS`, points each),
    ``consciousness`` (:data:`CONSCIOUSNESS`), ``seizure`` (:data:`SEIZURES`), ``motor`` (:data:`MOTOR`)
    and ``raised_icp`` (:data:`RAISED_ICP`). The ICE items may be omitted only when the patient is
    unarousable (ICE 0)."""
    _unknown(inputs, ICANS_FIELDS)
    consciousness = _choice(inputs, "consciousness", CONSCIOUSNESS, "alert")
    seizure = _choice(inputs, "seizure", SEIZURES, "none")
    motor = _choice(inputs, "motor", MOTOR, "none")
    icp = _choice(inputs, "raised_icp", RAISED_ICP, "none")
    unarousable = consciousness == "unarousable"
    items: dict[str, int | None] = {}
    for item, (most, what) in ICE_ITEMS.items():
        if inputs.get(item) in (None, ""):
            if not unarousable:
                raise GradingInputError(item, f"give the ICE points for {what} (0 to {most}).")
            items[item] = None
            continue
        items[item] = _count(inputs, item, most, f"the ICE points for {what}")
    normal: dict[str, Any] = {**items, "consciousness": consciousness, "seizure": seizure, "motor": motor,
                              "raised_icp": icp}

    reasons: list[str] = []
    if unarousable:
        ice_grade = 4
        ice = 0
        reasons.append("ICE score 0 because the patient is unarousable and cannot be assessed: grade 4.")
    else:
        ice = sum(v for v in items.values() if v is not None)
        if ice == 10:
            ice_grade = 0
            reasons.append("ICE score 10 of 10 is normal.")
        else:
            ice_grade = 1 if ice >= 7 else 2 if ice >= 3 else 3
            band = {1: "7–9", 2: "3–6", 3: "0–2"}[ice_grade]
            reasons.append(f"ICE score {ice} of 10 (ICE {band}) is grade {ice_grade}.")
    normal["ice_score"] = ice

    domains = [ice_grade]
    level, text = CONSCIOUSNESS[consciousness]
    if level:
        domains.append(level)
        reasons.append(f"Depressed level of consciousness, {text}, is grade {level}.")
    for field, table, what in ((seizure, SEIZURES, "Seizure"), (motor, MOTOR, "Motor finding"),
                               (icp, RAISED_ICP, "Raised intracranial pressure")):
        level, text = table[field]
        if level:
            domains.append(level)
            reasons.append(f"{what}: {text}, is grade {level}.")
    grade = max(domains)
    if grade == 0:
        reasons.append("ICE 10, alert, no seizure, motor finding or raised intracranial pressure: no ICANS (grade 0).")
    elif len([d for d in domains if d]) > 1:
        reasons.append(f"The grade is that of the most severe domain: {grade}.")
    return Grade(grade, tuple(reasons), normal)


def ctcae_grade(value: Any) -> Grade:
    """An adverse event other than CRS and ICANS carries the CTCAE grade the physician gives (1–5)."""
    grade = _count({"grade": value}, "grade", 5, "the CTCAE grade")
    if grade < 1:
        raise GradingInputError("grade", "the CTCAE grade is a whole number from 1 to 5.")
    return Grade(grade, (f"CTCAE grade {grade} as recorded by the physician.",), {"grade": grade})
