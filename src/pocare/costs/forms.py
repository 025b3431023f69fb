"""Forms of the costs pages: which cost report to compute (a site or the network, a period) and its
signature."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from pocare.core.fields import DateField
from pocare.costs import report
from pocare.ledger.forms import SignatureFieldsMixin

#: The default period: the last 18 months (the issue's demo asks for the cost reports of 18 months).
DEFAULT_DAYS = 548


class ReportForm(forms.Form):
    """A site the person reads costs at (or the whole network, for a Control Site role) and a period."""

    site = forms.ChoiceField(label="Site", required=False)
    start = DateField(label="From (UTC day)")
    end = DateField(label="To (UTC day, included)")

    def __init__(self, *args: Any, sites: list[tuple[str, str]], network: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        today = timezone.now().date()
        self.fields["start"].initial = today - dt.timedelta(days=DEFAULT_DAYS)
        self.fields["end"].initial = today
        field = self.fields["site"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = ([("", "The whole network")] if network else []) + sites
        field.required = not network

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start is not None and end is not None:
            try:
                report.period_checked(start, end, today=timezone.now().date())
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    for error in errors:
                        self.add_error(field, error)
        return data


class ReportSignForm(SignatureFieldsMixin):
    site = forms.CharField(widget=forms.HiddenInput, required=False, max_length=20)
    start = DateField(widget=forms.HiddenInput)
    end = DateField(widget=forms.HiddenInput)
    reason = forms.CharField(label="Reason for signing", max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="What the report is for: the quarter's close, an auditor's request, a payer.")
    field_order = ["site", "start", "end", "reason", "username", "password"]


class ModelDraftForm(forms.Form):
    """The next version of the cost model: its content as JSON (the shape in docs/costs.md), the day it
    takes effect and why. Checked by the service, which names the path of any value refused."""

    content = forms.CharField(label="Rates and prices (JSON)", max_length=200_000,
                              widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "code"}),
                              help_text="Start from the version in force, shown here; docs/costs.md gives the shape "
                                        "and the bounds of every figure.")
    effective_from = DateField(label="Takes effect on (UTC day)",
                               help_text="Batches started on or after this day are priced with it once approved.")
    reason = forms.CharField(label="Why a new version", max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="The budget, the supplier's new price list, the audit finding.")


class ModelApproveForm(SignatureFieldsMixin):
    reason = forms.CharField(label="Reason for approving", max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
    field_order = ["reason", "username", "password"]
