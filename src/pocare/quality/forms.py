"""Forms of the quality pages: one per action on a deviation, signal or escalation rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms

from pocare.core.fields import DateField
from pocare.core.widgets import python_rendered
from pocare.ledger.forms import SignatureFieldsMixin
from pocare.quality import risk
from pocare.quality.models import CapaKind, Deviation, DeviationClass, Impact, SignalOutcome
from pocare.quality.services import NOTIFIABLE_ROLES, ROOT_CAUSE_CATEGORIES


def _scale(name: str) -> forms.TypedChoiceField:
    words = risk.SCALES[name]
    return forms.TypedChoiceField(label=name.capitalize(), coerce=int,
                                  choices=[("", "—"), *[(k, f"{k} — {v}") for k, v in words.items()]])


class ClassifyForm(forms.Form):
    severity = _scale("severity")
    occurrence = _scale("occurrence")
    detectability = _scale("detectability")
    rationale = forms.CharField(label="Rationale", max_length=4000, widget=forms.Textarea(attrs={"rows": 2}),
                                help_text="Why these scores: what could happen, how often, how it would be caught.")


class InvestigationForm(forms.Form):
    findings = forms.CharField(label="Findings", max_length=8000, widget=forms.Textarea(attrs={"rows": 3}))
    root_cause = forms.CharField(label="Root cause", max_length=4000, required=False,
                                 widget=forms.Textarea(attrs={"rows": 2}),
                                 help_text="Required for critical and major deviations.")
    root_cause_category = forms.ChoiceField(label="Root-cause category")
    reason = forms.CharField(label="Reason", max_length=500, initial="Investigation completed")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["root_cause_category"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "—"), *ROOT_CAUSE_CATEGORIES.items()]


class CapaForm(forms.Form):
    kind = forms.ChoiceField(label="Kind", choices=CapaKind.choices)
    description = forms.CharField(label="Action", max_length=4000, widget=forms.Textarea(attrs={"rows": 2}))
    owner = forms.ChoiceField(label="Owner")
    due_on = DateField(label="Due on")
    effectiveness_due_on = DateField(label="Effectiveness check due on", required=False)
    change_request = forms.ChoiceField(label="Change request", required=False,
                                       help_text="When the action changes the master file.")

    def __init__(self, *args: Any, owners: list[tuple[str, str]], change_requests: list[tuple[str, str]],
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owner = self.fields["owner"]
        change = self.fields["change_request"]
        assert isinstance(owner, forms.ChoiceField) and isinstance(change, forms.ChoiceField)
        owner.choices = [("", "—"), *owners]
        change.choices = [("", "— none —"), *change_requests]


class CapaDoneForm(forms.Form):
    note = forms.CharField(label="What was done", max_length=4000)


class EffectivenessForm(forms.Form):
    effective = forms.TypedChoiceField(label="Effective?", choices=[("yes", "Effective"), ("no", "Not effective")],
                                       coerce=lambda v: v == "yes")
    note = forms.CharField(label="What the check found", max_length=4000)


class ImpactForm(SignatureFieldsMixin):
    impact = forms.ChoiceField(label="Impact on the product", choices=Impact.choices)
    rationale = forms.CharField(label="Rationale", max_length=4000, widget=forms.Textarea(attrs={"rows": 2}))
    field_order = ["impact", "rationale", "username", "password"]


class CloseForm(SignatureFieldsMixin):
    summary = forms.CharField(label="Closure summary", max_length=8000, widget=forms.Textarea(attrs={"rows": 3}))
    confirm = forms.BooleanField(label="I have reviewed the classification, investigation, impact and CAPA; "
                                       "closing cannot be undone.")
    field_order = ["summary", "confirm", "username", "password"]


class EscalationRuleForm(forms.Form):
    deviation_class = forms.ChoiceField(label="Class", choices=DeviationClass.choices)
    notify_roles = forms.MultipleChoiceField(label="Notify at once", required=False,
                                             widget=forms.CheckboxSelectMultiple)
    investigation_days = forms.IntegerField(label="Investigation days", min_value=1, max_value=365)
    reason = forms.CharField(label="Reason", max_length=500)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        roles = self.fields["notify_roles"]
        assert isinstance(roles, forms.MultipleChoiceField)
        roles.choices = [(r.value, r.label) for r in NOTIFIABLE_ROLES]


class SignalResolveForm(SignatureFieldsMixin):
    """Resolve one quality signal, signed: the deviation is chosen from the open deviations of the
    signal's site (never typed), a change request by reference, or a documented decision."""

    outcome = forms.ChoiceField(label="Outcome", choices=SignalOutcome.choices)
    deviation = forms.ChoiceField(label="Open deviation at the site", required=False, choices=[])
    change_request = forms.CharField(label="Change request reference", max_length=20, required=False)
    decision = forms.CharField(label="Decision", max_length=4000, required=False,
                               widget=forms.Textarea(attrs={"rows": 2}))
    reason = forms.CharField(label="Reason", max_length=500)
    field_order = ["outcome", "deviation", "change_request", "decision", "reason", "username", "password"]

    def __init__(self, *args: Any, deviations: Sequence[Deviation] = (), open_count: int | None = None,
                 **kwargs: Any) -> None:
        """``deviations``: the ones offered; ``open_count``: how many are open at the site, when the
        list offers only the latest of them (the page lists one form per signal)."""
        super().__init__(*args, **kwargs)
        field = self.fields["deviation"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "— none open at this site —" if not deviations else "— choose —")] + [
            (d.reference, f"{d.reference}: {d.title[:70]}") for d in deviations]
        if open_count is not None and open_count > len(deviations):
            field.help_text = (f"The {len(deviations)} opened last of {open_count} open at the site; an older one "
                               f"is linked from the deviation's own page.")
        # The signals page shows one of these per open signal: widgets written in Python, not a
        # template per widget and option (225 of the page's 279 ms for 38 signals; issue 15).
        python_rendered(self)
