"""Forms of the custody pages. They only parse input; the services decide."""

from __future__ import annotations

from typing import Any

from django import forms

from pocare.core.fields import DateTimeField
from pocare.custody.models import HandoffKind, ShipmentLeg

REASON_HELP = "Recorded in the audit trail."


def _reason() -> forms.CharField:
    return forms.CharField(label="Reason", max_length=1000, help_text=REASON_HELP,
                           widget=forms.Textarea(attrs={"rows": 2}))


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"


class OrderForm(forms.Form):
    treating_site = forms.ChoiceField(label="Treating site", help_text="Where the patient is collected and infused.")
    site = forms.ChoiceField(label="Manufacturing site", help_text="The POCare site that makes the product.")
    product = forms.ChoiceField(label="Product")
    recipient_id = forms.CharField(label="Recipient id", max_length=40,
                                   help_text="The hospital's pseudonymous patient identifier.")
    recipient_birth_year = forms.IntegerField(label="Birth year", required=False, min_value=1890, max_value=2100)
    recipient_weight_kg = forms.DecimalField(label="Weight (kg)", max_digits=5, decimal_places=1, min_value=0)
    indication = forms.CharField(label="Indication", max_length=120)
    reason = _reason()

    def __init__(self, *args: Any, treating: list[tuple[str, str]], sites: list[tuple[str, str]],
                 products: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, choices in (("treating_site", treating), ("site", sites), ("product", products)):
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            field.choices = [("", "Choose…"), *choices]


class AcceptForm(forms.Form):
    reason = _reason()


class CollectionForm(forms.Form):
    collection_started_at = DateTimeField(label="Collection started", widget=DateTimeInput,
                                                help_text="Local time at the collection site.")
    collection_ended_at = DateTimeField(label="Collection ended", widget=DateTimeInput,
                                              help_text="Local time at the collection site.")
    volume_ml = forms.DecimalField(label="Volume (mL)", max_digits=7, decimal_places=1, min_value=0)
    donor_tests = forms.CharField(label="Donor tests", widget=forms.Textarea(attrs={"rows": 3}), max_length=2000,
                                  help_text="One per line: marker: result (e.g. HIV: negative).")
    autologous = forms.BooleanField(label="Autologous", required=False, initial=True)
    reason = _reason()

    def clean_donor_tests(self) -> dict[str, str]:
        tests: dict[str, str] = {}
        for n, line in enumerate(self.cleaned_data["donor_tests"].splitlines(), 1):
            if not line.strip():
                continue
            marker, sep, result = line.partition(":")
            if not sep or not marker.strip() or not result.strip():
                raise forms.ValidationError(f"Line {n}: write marker: result (e.g. HBsAg: negative).")
            tests[marker.strip()] = result.strip()
        return tests


class HandoffForm(forms.Form):
    kind = forms.ChoiceField(label="Hand-off", choices=HandoffKind.choices)
    collection = forms.TypedChoiceField(label="Collection (DIN)", required=False, coerce=int, empty_value=None)
    presented_identifier = forms.CharField(
        label="Scan the label", max_length=80,
        help_text="The DIN on the bag before manufacture, the COI on product containers.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True, "spellcheck": "false"}))
    location = forms.CharField(label="Location", max_length=200, required=False,
                               help_text="Room, ward or courier.")
    notes = forms.CharField(label="Notes", max_length=4000, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, collections: list[tuple[int, str]], kinds: list[str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["collection"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "—"), *collections]
        if kinds:
            kind = self.fields["kind"]
            assert isinstance(kind, forms.ChoiceField)
            kind.initial = kinds[0]


class ShipmentForm(forms.Form):
    leg = forms.ChoiceField(label="Leg", choices=ShipmentLeg.choices)
    logger_id = forms.CharField(label="Data logger id", max_length=60)
    reason = _reason()


class UploadForm(forms.Form):
    csv_file = forms.FileField(label="Logger CSV", help_text="Columns timestamp,temperature_c; ISO 8601 times "
                                                             "with offset or Z.")

    def clean_csv_file(self) -> str:
        upload = self.cleaned_data["csv_file"]
        if upload.size > 10 * 1024 * 1024:
            raise forms.ValidationError("At most 10 MB.")
        try:
            return str(upload.read().decode("utf-8"))
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text.") from None
