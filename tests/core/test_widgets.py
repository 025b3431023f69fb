"""The Python-written widgets (pocare.core.widgets) give Django's own HTML: same attributes in the same
order, same escaping, same selected option — only the whitespace between options differs."""

from __future__ import annotations

import re

import pytest
from django import forms

from pocare.core.widgets import python_rendered


class _Form(forms.Form):
    choice = forms.ChoiceField(choices=[("", "— choose —"), ("D&1", 'x <y> "z"'), ("2", "two")], required=False)
    text = forms.CharField(max_length=20, help_text="help")
    area = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    secret = forms.CharField(widget=forms.PasswordInput)
    flag = forms.BooleanField(required=False)  # not swapped: Django's own checkbox


def _same(html: str) -> str:
    return re.sub(r">\s+<", "><", html).strip()


@pytest.mark.parametrize("data", [None, {"choice": "D&1", "text": 'v"<&', "area": "two\nlines", "secret": "pw"},
                                  {"choice": "zz", "text": ""}])
def test_python_rendered_widgets_write_what_djangos_templates_write(data: dict[str, str] | None) -> None:
    django_form, python_form = _Form(data, auto_id="id_s7_%s"), python_rendered(_Form(data, auto_id="id_s7_%s"))
    if data is not None:
        assert django_form.is_valid() == python_form.is_valid()
    for name in ("choice", "text", "area", "secret", "flag"):
        assert _same(str(python_form[name])) == _same(str(django_form[name])), name
    assert type(python_form.fields["choice"].widget).__module__ == "pocare.core.widgets"
    assert type(python_form.fields["flag"].widget) is forms.CheckboxInput


def test_a_password_is_never_written_back() -> None:
    form = python_rendered(_Form({"secret": "hunter2", "text": "x"}))
    form.is_valid()
    assert "hunter2" not in str(form["secret"])
