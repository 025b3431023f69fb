"""Forms of the ledger pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.sessions.backends.base import SessionBase

from pocare.ledger.signing import SigningCredentials, SigningRefused


class SignatureFieldsMixin(forms.Form):
    """The re-authentication fields of an electronic signature (P11-200).

    The user id is asked at the first signature of a session and outside a continuous session;
    later signatures in the same session ask only for the password.
    """

    username = forms.CharField(label="User id", max_length=150, required=False)
    password = forms.CharField(label="Password", widget=forms.PasswordInput, max_length=256)

    def __init__(self, *args: Any, ask_user_id: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if ask_user_id:
            self.fields["username"].required = True
        else:
            del self.fields["username"]

    def credentials(self, session: SessionBase) -> SigningCredentials:
        """What the signer typed, for ``signing_authenticate`` (call after ``is_valid``)."""
        return SigningCredentials(password=self.cleaned_data["password"],
                                  username=self.cleaned_data.get("username", ""), session=session)

    def show_refusal(self, exc: SigningRefused) -> None:
        """Show why signing was refused, on the field it concerns when the form has it."""
        self.add_error(exc.field if exc.field in self.fields else None, str(exc))


class ReadingCorrectionForm(SignatureFieldsMixin):
    """Correct a reading (device or logger) beside the original: a new value, or mark it invalid
    (no replacement), with a reason and a signature."""

    value = forms.CharField(label="Corrected value", max_length=40, required=False)
    invalid = forms.BooleanField(label="Mark the reading invalid (no replacement value)", required=False)
    reason = forms.CharField(label="Reason for the correction", max_length=1000,
                             widget=forms.Textarea(attrs={"rows": 2}))
    field_order = ["value", "invalid", "reason", "username", "password"]

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        if data.get("invalid") and (data.get("value") or "").strip():
            self.add_error("value", "Either give the corrected value or mark the reading invalid, not both.")
        elif not data.get("invalid") and not (data.get("value") or "").strip():
            self.add_error("value", "Give the corrected value, or mark the reading invalid.")
        return data
