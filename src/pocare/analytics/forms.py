"""The product quality review's choice: product and period (UTC dates, inclusive)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms

from pocare.core.fields import DateField
from pocare.masterfile.models import Product

MAX_DAYS = 3 * 366


class ReviewForm(forms.Form):
    product = forms.ChoiceField(label="Product")
    start = DateField(label="From (UTC date)")
    end = DateField(label="To (UTC date, inclusive)")
    format = forms.ChoiceField(choices=[("html", "HTML"), ("pdf", "PDF")], required=False)

    def __init__(self, *args: Any, products: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["product"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = products
        self.chosen_product: Product | None = None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if end and end >= dt.date.max:
            self.add_error("end", "Choose an end date before 9999-12-31.")
        elif start and end:
            if end < start:
                self.add_error("end", "The period ends before it starts: choose an end on or after the start.")
            elif (end - start).days > MAX_DAYS:
                self.add_error("end", f"A review covers at most {MAX_DAYS} days; choose a shorter period.")
        code = data.get("product")
        if code:
            self.chosen_product = Product.objects.filter(code=code).first()
        return data
