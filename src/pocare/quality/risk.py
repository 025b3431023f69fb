"""ICH Q9(R1) risk scoring of deviations (REQUIREMENTS.md Q9-RISK, DEV-CLASS). Pure Python, no Django.

A deviation is scored on three defined 1–5 scales — **severity** (what the deviation could do to
the patient or the product), **occurrence** (how likely it is to happen or recur) and
**detectability** (how likely it is to escape detection before the product reaches the patient;
1 = always detected) — so that two assessors scoring the same event reach the same number. ICH
Q9(R1) (2023) asks that risk be assessed as a combination of the probability of occurrence of
harm and its severity, with the ability to detect it as a factor, and that the formality of the
response be proportional to the risk; the scales below are this project's, written for an
autologous cell-therapy process.

The class follows from the scores by a fixed rule (:func:`classify`), with the risk priority
number RPN = severity × occurrence × detectability (1–125):

* **critical** — severity 5 (the patient could be harmed or the product is lost), or severity 4
  when occurrence × detectability ≥ 6 (a possible effect on a critical quality attribute that is
  not both rare and reliably caught);
* **major** — any other severity 4, or severity ≥ 2 with RPN ≥ 12;
* **minor** — everything else; severity 1 (no effect on quality) is always minor.

The rule is monotone: raising any score never lowers the class. Severity dominates — serious
harm counts however unlikely, as ICH Q9(R1) warns against letting a low probability hide a
severe outcome — and occurrence and detectability move a deviation up only within a severity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CRITICAL, MAJOR, MINOR = "critical", "major", "minor"
LOW, HIGH = 1, 5

#: What each level of a scale means (shown beside the score on every form and page).
SEVERITY: dict[int, str] = {
    1: "No effect on product quality or the patient (a documentation or GMP-system slip).",
    2: "Minor: a parameter off target but inside the proven range; no effect on a quality attribute expected.",
    3: "Moderate: could affect a non-critical quality attribute or the process; the product is still "
       "expected to meet its specification.",
    4: "Serious: could affect a critical quality attribute, identity or sterility assurance; the product "
       "may not meet its specification.",
    5: "Critical: could harm the patient, or the product is lost (identity mix-up, contamination, failed batch).",
}
OCCURRENCE: dict[int, str] = {
    1: "Isolated: not seen before; a special cause is identified.",
    2: "Unlikely: seen once before in the network.",
    3: "Occasional: a few times a year in the network.",
    4: "Likely: recurs at this site several times a year.",
    5: "Frequent: recurs often, or is systemic across sites.",
}
DETECTABILITY: dict[int, str] = {
    1: "Certain: caught at once by an automatic check (scan, interlock, in-process alarm).",
    2: "High: caught by the in-process controls or QC before release.",
    3: "Moderate: caught by the batch record review before release.",
    4: "Low: caught only by chance, or by tests that finish after release.",
    5: "None: not detectable before the product reaches the patient.",
}
SCALES: dict[str, dict[int, str]] = {"severity": SEVERITY, "occurrence": OCCURRENCE, "detectability": DETECTABILITY}

#: Thresholds of the rule (see the module docstring).
CRITICAL_S4_OD = 6
MAJOR_RPN = 12


class ScoreError(ValueError):
    """A score outside its scale; ``field`` names the scale."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def score(field: str, value: Any) -> int:
    """``value`` as a score of the scale ``field`` (1–5), or :class:`ScoreError` naming the field."""
    if isinstance(value, bool):
        raise ScoreError(field, f"{value!r} is not a score; give a whole number from {LOW} to {HIGH}.")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or not LOW <= value <= HIGH:
        raise ScoreError(field, f"{value!r} is not a {field} score; give a whole number from {LOW} to {HIGH}.")
    return value


def rpn(severity: int, occurrence: int, detectability: int) -> int:
    """The risk priority number, severity × occurrence × detectability (1–125)."""
    return severity * occurrence * detectability


def classify(severity: int, occurrence: int, detectability: int) -> str:
    """``critical``, ``major`` or ``minor`` from three 1–5 scores, by the rule of the module docstring."""
    s = score("severity", severity)
    o = score("occurrence", occurrence)
    d = score("detectability", detectability)
    if s == 5 or (s == 4 and o * d >= CRITICAL_S4_OD):
        return CRITICAL
    if s == 4 or (s >= 2 and rpn(s, o, d) >= MAJOR_RPN):
        return MAJOR
    return MINOR


@dataclass(frozen=True)
class Assessment:
    """A scoring with its words and class, for display and reports."""

    severity: int
    occurrence: int
    detectability: int

    @property
    def rpn(self) -> int:
        return rpn(self.severity, self.occurrence, self.detectability)

    @property
    def result(self) -> str:
        return classify(self.severity, self.occurrence, self.detectability)

    def words(self) -> dict[str, str]:
        return {"severity": SEVERITY[self.severity], "occurrence": OCCURRENCE[self.occurrence],
                "detectability": DETECTABILITY[self.detectability]}
