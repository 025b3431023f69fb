"""Helpers shared by the forms of every app: a service's refusal shown on the field it names."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError


def apply_validation_error(form: forms.Form, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form: on the named field when the form has it,
    otherwise as a form error that still names the field."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            if field in form.fields:
                for message in errors:
                    form.add_error(field, message)
            else:
                for message in errors:
                    form.add_error(None, f"{field.replace('_', ' ')}: {message}")
    else:
        for message in exc.messages:
            form.add_error(None, message)
