"""Forms of the network pages. They only parse input; the services decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils import timezone

from pocare.core.fields import DateField
from pocare.ledger.forms import SignatureFieldsMixin
from pocare.network.models import DeviceType, ReadinessItem, RunOutcome, SiteStatus, UnitStatus

REASON_HELP = "Recorded in the audit trail."


def _reason() -> forms.CharField:
    return forms.CharField(label="Reason", max_length=1000, help_text=REASON_HELP,
                           widget=forms.Textarea(attrs={"rows": 2}))


class TransitionForm(SignatureFieldsMixin):
    """Move a site to its next lifecycle status, signed (meaning: approved)."""

    to_status = forms.ChoiceField(label="New status", choices=SiteStatus.choices, widget=forms.HiddenInput)
    reason = _reason()
    field_order = ["to_status", "reason", "username", "password"]


class ReadinessForm(forms.Form):
    item = forms.ChoiceField(label="Readiness item", choices=[("", "Choose an item…"), *ReadinessItem.choices])
    evidence = forms.CharField(label="Evidence", max_length=2000,
                               help_text="Document reference (e.g. IQ/OQ report number) or a short description.")
    reason = _reason()


class PerformanceRunForm(forms.Form):
    reference = forms.CharField(label="Run or report number", max_length=100)
    performed_on = DateField(label="Performed on", help_text="Date at the site.")
    outcome = forms.ChoiceField(label="Outcome", choices=[("", "Choose…"), *RunOutcome.choices])
    notes = forms.CharField(label="Notes", max_length=2000, required=False,
                            widget=forms.Textarea(attrs={"rows": 2}))
    reason = _reason()


class UnitRegisterForm(forms.Form):
    device_type = forms.ChoiceField(label="Device type", choices=[("", "Choose…"), *DeviceType.choices])
    model = forms.CharField(label="Model", max_length=100, required=False)
    serial = forms.CharField(label="Serial number", max_length=100)
    calibration_due = DateField(label="Calibration due")
    maintenance_due = DateField(label="Maintenance due")
    reason = _reason()


class UnitRequalifyForm(forms.Form):
    calibration_due = DateField(label="Next calibration due")
    maintenance_due = DateField(label="Next maintenance due")
    reason = _reason()


class UnitStatusForm(forms.Form):
    status = forms.ChoiceField(label="New status", choices=[
        ("", "Choose…"), (UnitStatus.OUT_OF_SERVICE.value, UnitStatus.OUT_OF_SERVICE.label),
        (UnitStatus.RETIRED.value, UnitStatus.RETIRED.label),
    ])
    reason = _reason()


class AuthorizeForm(SignatureFieldsMixin):
    """Authorize a site for a product's master file from a version on, signed (meaning: approved)."""

    product = forms.ChoiceField(label="Product")
    from_version = forms.IntegerField(label="From master-file version", min_value=1, initial=1)
    valid_from = DateField(label="Valid from", required=False,
                                 help_text="Date at the site; empty or today means from now.")
    conditions = forms.CharField(label="Conditions", max_length=4000, required=False,
                                 widget=forms.Textarea(attrs={"rows": 2}))
    reason = _reason()
    field_order = ["product", "from_version", "valid_from", "conditions", "reason", "username", "password"]

    def __init__(self, *args: Any, products: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["product"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "Choose a product…"), *products]


class RevokeForm(forms.Form):
    reason = _reason()


class AnnualReportForm(forms.Form):
    year = forms.IntegerField(label="Year", min_value=2000, max_value=2100)
    product = forms.ChoiceField(label="Product", required=False)
    format = forms.ChoiceField(label="Format", choices=[("html", "Page"), ("pdf", "PDF")], required=False)

    def __init__(self, *args: Any, products: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["product"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "No product (network only)"), *products]

    def clean_year(self) -> int:
        year: int = self.cleaned_data["year"]
        if year > timezone.now().year:
            raise forms.ValidationError("That year has not begun; choose this year or an earlier one.")
        return year
