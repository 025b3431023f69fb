"""Forms of the master-file pages: signing an action, raising a change request, choosing a diff."""

from __future__ import annotations

from typing import Any

from django import forms

from pocare.ledger.forms import SignatureFieldsMixin

SCORE_CHOICES = [("", "Choose…"), *[(str(n), str(n)) for n in range(1, 6)]]


class SignActionForm(SignatureFieldsMixin):
    """Reason and re-authentication for a signed step of a version's lifecycle; irreversible steps
    also ask for an explicit confirmation."""

    reason = forms.CharField(label="Reason", max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Recorded in the audit trail with your signature.")
    confirm = forms.BooleanField(label="I understand that this cannot be undone.", required=False)
    field_order = ["reason", "confirm", "username", "password"]

    def __init__(self, *args: Any, irreversible: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.irreversible = irreversible
        if irreversible:
            self.fields["confirm"].required = True
            self.fields["confirm"].error_messages["required"] = "Tick the box to confirm this irreversible step."
        else:
            del self.fields["confirm"]


class ChangeRequestForm(forms.Form):
    """A change request with its proposed master-file document (YAML)."""

    product = forms.ChoiceField(label="Product")
    title = forms.CharField(label="Title", max_length=200)
    description = forms.CharField(label="What changes and why", max_length=8000,
                                  widget=forms.Textarea(attrs={"rows": 4}))
    severity = forms.ChoiceField(label="Severity (1 negligible … 5 catastrophic)", choices=SCORE_CHOICES)
    probability = forms.ChoiceField(label="Probability (1 rare … 5 frequent)", choices=SCORE_CHOICES)
    detectability = forms.ChoiceField(label="Detectability (1 always detected … 5 undetectable)",
                                      choices=SCORE_CHOICES)
    sites = forms.MultipleChoiceField(label="Sites affected", widget=forms.CheckboxSelectMultiple)
    comparability_evidence = forms.CharField(
        label="Comparability evidence required", max_length=8000, required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Required for medium- and high-risk changes (CMP-SITE): what data shows the product stays "
                  "the same.")
    document = forms.CharField(
        label="Proposed master-file document (YAML)", max_length=400_000,
        widget=forms.Textarea(attrs={"rows": 28, "spellcheck": "false", "class": "yaml"}),
        help_text="Start from the effective version's document and change what the request changes. Steps you "
                  "add or change become the training operators need.")
    reason = forms.CharField(label="Reason", max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Recorded in the audit trail.")

    def __init__(self, *args: Any, products: list[tuple[str, str]], sites: list[tuple[str, str]],
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        product = self.fields["product"]
        assert isinstance(product, forms.ChoiceField)
        product.choices = products
        site_field = self.fields["sites"]
        assert isinstance(site_field, forms.MultipleChoiceField)
        site_field.choices = sites


class DiffForm(forms.Form):
    """Two versions to compare."""

    a = forms.ChoiceField(label="From version")
    b = forms.ChoiceField(label="To version")

    def __init__(self, *args: Any, versions: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("a", "b"):
            f = self.fields[name]
            assert isinstance(f, forms.ChoiceField)
            f.choices = versions
