"""Forms of the accounts pages. They only parse input; services decide."""

from __future__ import annotations

from typing import Any

from django import forms

from pocare.accounts.models import Membership
from pocare.accounts.roles import Role
from pocare.core.fields import DateTimeField


class LoginForm(forms.Form):
    username = forms.CharField(label="User id", max_length=150)
    password = forms.CharField(label="Password", widget=forms.PasswordInput, max_length=256)


class PasswordChangeForm(forms.Form):
    old_password = forms.CharField(label="Current password", widget=forms.PasswordInput, max_length=256)
    new_password = forms.CharField(label="New password", widget=forms.PasswordInput, max_length=256,
                                   help_text="At least 12 characters, not common, not all digits.")
    confirm = forms.CharField(label="New password again", widget=forms.PasswordInput, max_length=256)

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("new_password") and data.get("new_password") != data.get("confirm"):
            self.add_error("confirm", "The two new passwords differ.")
        return data


class PasswordSetForm(forms.Form):
    new_password = forms.CharField(label="New password", widget=forms.PasswordInput, max_length=256)
    confirm = forms.CharField(label="New password again", widget=forms.PasswordInput, max_length=256)

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("new_password") and data.get("new_password") != data.get("confirm"):
            self.add_error("confirm", "The two passwords differ.")
        return data


class ReasonForm(forms.Form):
    reason = forms.CharField(label="Reason", max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))


def _sites() -> Any:
    """Every site, through ``Membership.site``: the relation accounts declares to the network above
    it (docs/architecture.md, "Relations that point up")."""
    site_model = Membership._meta.get_field("site").related_model
    assert isinstance(site_model, type)
    return site_model._default_manager.all()


class GrantForm(forms.Form):
    role = forms.ChoiceField(choices=[("", "Choose a role…"), *Role.choices])
    site = forms.ModelChoiceField(queryset=_sites(), to_field_name="code")
    valid_until = DateTimeField(required=False, help_text="Required for inspectors (UTC).")
    reason = forms.CharField(max_length=1000)


class UserCreateForm(forms.Form):
    username = forms.CharField(label="User id", max_length=150)
    printed_name = forms.CharField(label="Printed name", max_length=200,
                                   help_text="Full name as it will appear with signatures.")
    email = forms.EmailField(help_text="The set-password link goes here.")
    reason = forms.CharField(max_length=1000)


class IdentityLinkForm(forms.Form):
    """Link a person to their account at a hospital's provider (the providers are configured)."""

    provider = forms.ChoiceField(label="Hospital sign-on")
    subject = forms.CharField(label="Subject at the provider", max_length=255,
                              help_text="The identifier the provider puts in the ID token (its 'sub' claim, or the "
                                        "claim configured for it).")
    reason = forms.CharField(max_length=1000)

    def __init__(self, *args: Any, providers: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["provider"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "Choose a provider…"), *providers.items()]
