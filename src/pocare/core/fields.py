"""Form and API fields that apply the bounds of :mod:`pocare.core.bounds` before anything else.

Dates and times are the case that needs fields of their own: a year outside the window must be
refused from the parsed value *before* any time-zone conversion, which would overflow. Every form
uses :class:`DateTimeField` / :class:`DateField` from here; the API gets them as the defaults of
``ModelSerializer`` (:func:`install_serializer_defaults`) and explicitly where a serializer declares one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import django_filters
import django_filters.fields
from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from rest_framework import serializers

from pocare.core import bounds


def _form_year_check(value: Any) -> None:
    if isinstance(value, dt.date):
        problem = bounds.datetime_problem(value)
        if problem:
            raise ValidationError(problem, code="year_out_of_range")


class _YearBounded:
    """Refuses a year outside the window from the text and from the parsed value, before any zone."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            problem = bounds.iso_text_problem(value.replace("/", "-"))
            if problem:
                raise ValidationError(problem, code="year_out_of_range")
        try:
            result = super().to_python(value)  # type: ignore[misc]
        except OverflowError:
            raise ValidationError(f"this time cannot be represented; allowed years are {bounds.YEAR_MIN}–"
                                  f"{bounds.YEAR_MAX}", code="year_out_of_range") from None
        _form_year_check(result)
        return result


class DateTimeField(_YearBounded, forms.DateTimeField):
    """A form date-time whose year must lie in the allowed window (checked before the zone is applied)."""


class DatePicker(forms.DateInput):
    """The browser's date picker. ``<input type="date">`` takes and shows ISO dates (YYYY-MM-DD)
    only: a value in the locale's format (05/12/2025) renders as an empty field."""

    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs, format="%Y-%m-%d")


class DateField(_YearBounded, forms.DateField):
    """A form date whose year must lie in the allowed window, chosen with the browser's date picker."""

    widget = DatePicker


ISO_DATE_PATTERN = r"\d{4}-\d{2}-\d{2}"
ISO_DATE_HINT = "YYYY-MM-DD"


class IsoDateInput(forms.TextInput):
    """A date typed as YYYY-MM-DD, for the list filters. Not the browser's picker: ``type="date"``
    shows the browser locale's format (mm/dd/yyyy in Chromium en-US), which a page cannot change,
    while every page, CSV and certificate of POCare writes ISO dates; a text box shows exactly
    what the address will carry, and the pattern lets the browser point at a wrong one first."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"placeholder": ISO_DATE_HINT, "pattern": ISO_DATE_PATTERN, "size": 10, "maxlength": 10,
                          "autocomplete": "off", "title": f"A date as {ISO_DATE_HINT}, e.g. 2025-03-14",
                          **(attrs or {})})


class IsoDateField(_YearBounded, forms.DateField):
    """A date accepted only as YYYY-MM-DD: a locale form such as 05/12/2025 is ambiguous (May or
    December) and is refused, naming the format, rather than read one way."""

    widget = IsoDateInput
    default_error_messages = {"invalid": f"Enter the date as {ISO_DATE_HINT}, e.g. 2025-03-14."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs["input_formats"] = ["%Y-%m-%d"]
        kwargs.setdefault("help_text", ISO_DATE_HINT)
        super().__init__(**kwargs)


class IsoDateTimeField(_YearBounded, django_filters.fields.IsoDateTimeField):  # type: ignore[misc]
    """django-filter's ISO 8601 date-time field, bounded."""


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):  # type: ignore[misc]
    """django-filter's ISO 8601 date-time filter, bounded."""

    field_class = IsoDateTimeField


class ApiDateTimeField(serializers.DateTimeField):
    """An API date-time whose year must lie in the allowed window, refused before conversion to UTC."""

    def to_internal_value(self, value: Any) -> dt.datetime:
        if isinstance(value, str):
            problem = bounds.iso_text_problem(value)
            if problem:
                raise serializers.ValidationError(problem, code="year_out_of_range")
        if isinstance(value, dt.date):
            problem = bounds.datetime_problem(value)
            if problem:
                raise serializers.ValidationError(problem, code="year_out_of_range")
        try:
            result: dt.datetime = super().to_internal_value(value)
        except OverflowError:
            raise serializers.ValidationError(
                f"this time cannot be represented; allowed years are {bounds.YEAR_MIN}–{bounds.YEAR_MAX}",
                code="year_out_of_range") from None
        problem = bounds.datetime_problem(result)
        if problem:
            raise serializers.ValidationError(problem, code="year_out_of_range")
        return result


class ApiDateField(serializers.DateField):
    """An API date whose year must lie in the allowed window."""

    def to_internal_value(self, value: Any) -> dt.date:
        result: dt.date = super().to_internal_value(value)
        problem = bounds.datetime_problem(result)
        if problem:
            raise serializers.ValidationError(problem, code="year_out_of_range")
        return result


class ApiFloatField(serializers.FloatField):
    """A float that is finite and within a double's range (DRF lets OverflowError through: a 500)."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, str):
            problem = bounds.number_text_problem(data)
            if problem:
                raise serializers.ValidationError(problem, code="invalid")
        if isinstance(data, int) and not isinstance(data, bool) and len(str(abs(data))) > bounds.MAX_NUMBER_DIGITS:
            raise serializers.ValidationError(f"numbers may have at most {bounds.MAX_NUMBER_DIGITS} digits",
                                              code="invalid")
        try:
            result: float = super().to_internal_value(data)
        except OverflowError:
            raise serializers.ValidationError("outside the range of numbers (about ±1.8e308)", code="invalid") from None
        return result


def install_serializer_defaults() -> None:
    """Make the bounded fields what every ``ModelSerializer`` builds for date, date-time and float columns."""
    mapping = serializers.ModelSerializer.serializer_field_mapping
    mapping[models.DateTimeField] = ApiDateTimeField
    mapping[models.DateField] = ApiDateField
    mapping[models.FloatField] = ApiFloatField
