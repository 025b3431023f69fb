"""Checks the services make of what people give, each refusing with a ValidationError that names the
field (the pages and the API show it beside that field). Pure bounds without Django: ``core.bounds``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from pocare.core import bounds


def text_checked(value: Any, field: str, what: str, max_length: int, *, required: bool = True) -> str:
    """``value`` as text, stripped, refused naming ``field`` when missing (if ``required``), with a NUL or
    a lone surrogate, or longer than ``max_length``."""
    text = str(value if value is not None else "").strip()
    if required and not text:
        raise ValidationError({field: f"Give the {what}."})
    if problem := bounds.text_problem(text):
        raise ValidationError({field: f"The {what}: {problem}."})
    if len(text) > max_length:
        raise ValidationError({field: f"The {what} has at most {max_length} characters."})
    return text
