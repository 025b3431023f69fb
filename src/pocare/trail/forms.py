"""The form to sign an audit-trail review."""

from __future__ import annotations

from typing import Any

from django import forms

from pocare.ledger.forms import SignatureFieldsMixin


class ReviewForm(SignatureFieldsMixin):
    chain = forms.ChoiceField(label="Chain (site)")
    comment = forms.CharField(label="What you reviewed and found", max_length=4000,
                              widget=forms.Textarea(attrs={"rows": 3}))
    field_order = ["chain", "comment", "username", "password"]

    def __init__(self, *args: Any, chains: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        chain_field = self.fields["chain"]
        assert isinstance(chain_field, forms.ChoiceField)
        chain_field.choices = [(c, c) for c in chains]
