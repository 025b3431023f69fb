"""Forms of the pathway pages. They only parse input; the services decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models
from django.utils.translation import gettext_lazy as _

from pocare.core.fields import DateField, DatePicker, DateTimeField
from pocare.patients.models import Language, LostReason


def _reason(label: str = "Reason") -> forms.CharField:
    return forms.CharField(label=_(label), max_length=1000, help_text=_("Recorded in the audit trail."),
                           widget=forms.Textarea(attrs={"rows": 2}))



def _translated(choices: type[models.TextChoices]) -> list[tuple[str, Any]]:
    """A model's choices with their labels translated when shown (the models mark them with gettext_noop)."""
    return [(value, _(label)) for value, label in choices.choices]

class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"


class ReferralForm(forms.Form):
    """The referral form: the patient's identity (sealed at once, PAT-PRIVACY), the pseudonymous facts
    the pathway uses, and the referral."""

    treating_site = forms.ChoiceField(label=_("Treating hospital"))
    product = forms.ChoiceField(label=_("Product"))
    name = forms.CharField(label=_("Patient's name"), max_length=200)
    birth_date = DateField(label=_("Date of birth"), widget=DatePicker)
    contact = forms.CharField(label=_("Contact (telephone, e-mail)"), max_length=200, required=False)
    address = forms.CharField(label=_("Address"), max_length=400, required=False,
                              widget=forms.Textarea(attrs={"rows": 2}))
    language = forms.ChoiceField(label=_("Patient's language"), choices=Language.choices,
                                 help_text=_("Consent, letters and questionnaires are in this language."))
    region = forms.CharField(label=_("Region of residence"), max_length=40, required=False,
                             help_text=_("A NUTS-3 code such as ES300, for access and equity."))
    travel_minutes = forms.IntegerField(label=_("Travel time to the hospital (minutes)"), required=False,
                                        min_value=0, max_value=2880)
    deprivation_quintile = forms.TypedChoiceField(
        label=_("Deprivation quintile of the home area"), required=False, coerce=int, empty_value=None,
        choices=[("", "—"), *[(str(i), str(i)) for i in range(1, 6)]])
    indication = forms.CharField(label=_("Indication"), max_length=120)
    weight_kg = forms.DecimalField(label=_("Weight (kg)"), max_digits=5, decimal_places=1, min_value=0)
    reason = _reason()

    def __init__(self, *args: Any, sites: list[tuple[str, str]], products: list[tuple[str, str]],
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, choices in (("treating_site", sites), ("product", products)):
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            field.choices = [("", _("Choose…")), *choices]


MET = [("yes", _("Met")), ("no", _("Not met"))]


class EligibilityForm(forms.Form):
    """One met / not met answer per criterion of the checklist in effect."""

    reason = _reason()

    def __init__(self, *args: Any, criteria: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.criteria = criteria
        for criterion in criteria:
            self.fields[f"c_{criterion['id']}"] = forms.ChoiceField(
                label=criterion["text"], choices=MET, widget=forms.RadioSelect,
                help_text="" if criterion.get("required", True) else _("Not required: recorded only."))
        self.order_fields([f"c_{c['id']}" for c in criteria] + ["reason"])

    @property
    def criterion_fields(self) -> list[Any]:
        return [self[f"c_{c['id']}"] for c in self.criteria]

    def answers(self) -> dict[str, bool]:
        return {c["id"]: self.cleaned_data[f"c_{c['id']}"] == "yes" for c in self.criteria}


class ConsentForm(forms.Form):
    document = forms.TypedChoiceField(label=_("Consent document signed"), coerce=int)
    signed_at = DateTimeField(label=_("Signed"), widget=DateTimeInput,
                              help_text=_("Local time at the treating hospital."))
    language_reason = forms.CharField(
        label=_("Why not in the patient's language"), max_length=500, required=False,
        help_text=_("Only when the document signed is not in the patient's language."))
    reason = _reason()

    def __init__(self, *args: Any, documents: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["document"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", _("Choose…")), *documents]


class WithdrawForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("I confirm that the patient withdraws consent: manufacture, certification and dispatch of "
                "everything made from the patient's material will be held."))
    reason = _reason("The patient's reason")


class LostForm(forms.Form):
    lost_reason = forms.ChoiceField(label=_("Why the patient was lost"), choices=_translated(LostReason))
    reason = _reason("What happened")


class SupportForm(forms.Form):
    support = forms.CharField(label=_("Travel and accommodation support"), max_length=2000, required=False,
                              widget=forms.Textarea(attrs={"rows": 3}),
                              help_text=_("No address or name here: the sealed identity holds them."))
    reason = _reason()


class ConsentDocumentForm(forms.Form):
    product = forms.ChoiceField(label=_("Product"))
    code = forms.CharField(label=_("Document code"), max_length=40, help_text=_("e.g. CD19-ICF"))
    language = forms.ChoiceField(label=_("Language"), choices=Language.choices)
    title = forms.CharField(label=_("Title"), max_length=200)
    body = forms.CharField(label=_("Text"), max_length=100_000, widget=forms.Textarea(attrs={"rows": 12}))
    reason = _reason()

    def __init__(self, *args: Any, products: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["product"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", _("Choose…")), *products]
