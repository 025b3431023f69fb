"""Forms of the follow-up pages (PAT-LTFU, PAT-GRADE). They only parse input; the services and the
grading decide. Grading inputs are taken as text so that the grading's own message (naming the input
and what is allowed) is what the person reads."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from pocare.core.fields import DateField, DateTimeField
from pocare.ledger.forms import SignatureFieldsMixin
from pocare.patients import grading
from pocare.patients.models import AdverseEventKind, Persistence, Response, VisitMode


def _translated(choices: type[models.TextChoices]) -> list[tuple[str, Any]]:
    """A model's choices with their labels translated when shown (the models mark them with gettext_noop)."""
    return [(value, _(label)) for value, label in choices.choices]

class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"


def _reason() -> forms.CharField:
    return forms.CharField(label=_("Reason"), max_length=1000, help_text=_("Recorded in the audit trail."),
                           widget=forms.Textarea(attrs={"rows": 2}))


_YES_NO_UNKNOWN = [("", _("Not assessed")), ("yes", _("Yes")), ("no", _("No"))]


def yes_no(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


class VisitForm(forms.Form):
    """A follow-up visit done: how, when (the hospital's local time), survival, response, new malignancy,
    persistence of the product."""

    mode = forms.ChoiceField(label=_("How"), choices=_translated(VisitMode))
    done_at = DateTimeField(label=_("Done at"), widget=DateTimeInput, help_text=_("Local time at the hospital."))
    alive = forms.TypedChoiceField(label=_("Patient alive"), choices=[("yes", _("Yes")), ("no", _("No"))],
                                   coerce=lambda v: v == "yes")
    response = forms.ChoiceField(label=_("Disease response"), choices=[("", "—"), *_translated(Response)],
                                 required=False)
    new_malignancy = forms.ChoiceField(label=_("New malignancy"), choices=_YES_NO_UNKNOWN, required=False)
    malignancy_description = forms.CharField(label=_("New malignancy: description"), max_length=2000,
                                             required=False, widget=forms.Textarea(attrs={"rows": 2}))
    persistence = forms.ChoiceField(label=_("Product persistence"), choices=[("", "—"), *_translated(Persistence)],
                                    required=False)
    reason = _reason()


class MissForm(forms.Form):
    """A visit that will not take place, with why."""

    reason = forms.CharField(label=_("Why was the visit missed?"), max_length=1000,
                             widget=forms.Textarea(attrs={"rows": 2}))


def _choices(table: dict[str, tuple[int, str]]) -> list[tuple[str, Any]]:
    return [(key, capfirst(_(text))) for key, (_grade, text) in table.items()]


class AdverseEventForm(forms.Form):
    """An adverse event after infusion: for CRS and ICANS the inputs of the ASTCT grading (the grade is
    computed and shown with its reasons), for another event its CTCAE term and grade."""

    kind = forms.ChoiceField(label=_("Event"), choices=_translated(AdverseEventKind))
    visit = forms.TypedChoiceField(label=_("Found at the visit"), required=False, coerce=int, empty_value=None)
    onset_on = DateField(label=_("Onset"))
    term = forms.CharField(label=_("Term (CTCAE)"), max_length=200, required=False,
                           help_text=_("Required for another event, e.g. Febrile neutropenia."))
    serious = forms.BooleanField(label=_("Serious (hospitalisation, life-threatening, death, disability)"),
                                 required=False)
    # CRS (ASTCT Table 3)
    temperature_c = forms.CharField(label=_("Highest temperature (°C)"), max_length=20, required=False)
    fever_masked = forms.BooleanField(label=_("Fever documented before, now masked by antipyretics or "
                                              "anti-cytokine therapy"), required=False)
    hypotension = forms.BooleanField(label=_("Hypotension"), required=False)
    vasopressors = forms.CharField(label=_("Vasopressors (how many, vasopressin not counted)"), max_length=20,
                                   required=False)
    vasopressin = forms.BooleanField(label=_("Vasopressin"), required=False)
    oxygen_device = forms.ChoiceField(label=_("Oxygen"), required=False,
                                      choices=[(k, capfirst(_(v))) for k, v in grading.OXYGEN_DEVICES.items()])
    oxygen_flow_l_min = forms.CharField(label=_("Oxygen flow (L/min)"), max_length=20, required=False)
    # ICANS (ASTCT Tables 4 and 5)
    orientation = forms.CharField(label=_("ICE: orientation (0–4)"), max_length=20, required=False)
    naming = forms.CharField(label=_("ICE: naming (0–3)"), max_length=20, required=False)
    commands = forms.CharField(label=_("ICE: following commands (0–1)"), max_length=20, required=False)
    writing = forms.CharField(label=_("ICE: writing (0–1)"), max_length=20, required=False)
    attention = forms.CharField(label=_("ICE: attention (0–1)"), max_length=20, required=False)
    consciousness = forms.ChoiceField(label=_("Level of consciousness"), required=False,
                                      choices=_choices(grading.CONSCIOUSNESS))
    seizure = forms.ChoiceField(label=_("Seizure"), required=False, choices=_choices(grading.SEIZURES))
    motor = forms.ChoiceField(label=_("Motor findings"), required=False, choices=_choices(grading.MOTOR))
    raised_icp = forms.ChoiceField(label=_("Raised intracranial pressure / cerebral oedema"), required=False,
                                   choices=_choices(grading.RAISED_ICP))
    # Other events
    ctcae_grade = forms.CharField(label=_("CTCAE grade (1–5)"), max_length=20, required=False)
    reason = _reason()

    CRS = ("temperature_c", "fever_masked", "hypotension", "vasopressors", "vasopressin", "oxygen_device",
           "oxygen_flow_l_min")
    ICANS = ("orientation", "naming", "commands", "writing", "attention", "consciousness", "seizure", "motor",
             "raised_icp")

    def __init__(self, *args: Any, visits: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["visit"].choices = [("", "—"), *visits]  # type: ignore[attr-defined]

    def inputs(self) -> dict[str, Any]:
        """The grading's inputs for the chosen kind (empty ones left out, so the grading's defaults hold)."""
        data = self.cleaned_data
        kind = data.get("kind")
        if kind == AdverseEventKind.CRS:
            return {k: data[k] for k in self.CRS if data.get(k) not in (None, "")}
        if kind == AdverseEventKind.ICANS:
            return {k: data[k] for k in self.ICANS if data.get(k) not in (None, "")}
        return {"grade": data.get("ctcae_grade", "")}

    def add_grading_error(self, field: str, message: str) -> None:
        self.add_error(field if field in self.fields else ("ctcae_grade" if field == "grade" else None), message)


def _translated_signature(form: SignatureFieldsMixin) -> None:
    """The signing fields' labels in the page's language (the ledger's form states them in English)."""
    if "username" in form.fields:
        form.fields["username"].label = _("User id")
    form.fields["password"].label = _("Password")
    form.fields["password"].help_text = _("Your signature: the correction is signed with your password.")


class VisitCorrectForm(VisitForm, SignatureFieldsMixin):
    """A recorded visit corrected by the treating physician: the values as they should be, the reason and
    the signature (user id at the session's first signature, and password)."""

    reason = forms.CharField(label=_("Reason for the correction"), max_length=1000,
                             help_text=_("Recorded in the audit trail, beside the values replaced."),
                             widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _translated_signature(self)


class AdverseEventCorrectForm(AdverseEventForm, SignatureFieldsMixin):
    """A recorded adverse event corrected by the treating physician: its grading inputs (the grade is
    computed again), whether it is serious, the term of another event; the reason and the signature. The
    kind, the onset and the visit stay as recorded."""

    reason = forms.CharField(label=_("Reason for the correction"), max_length=1000,
                             help_text=_("Recorded in the audit trail, beside the values replaced."),
                             widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, visits=[], **kwargs)
        self.event_kind = kind
        for name in ("kind", "visit", "onset_on"):
            del self.fields[name]
        _translated_signature(self)

    def inputs(self) -> dict[str, Any]:
        self.cleaned_data["kind"] = self.event_kind
        return super().inputs()
