"""Form widgets that write their HTML in Python instead of through a template per widget and option.

Django renders each widget, and each ``<option>`` of a select, through a template of its own: about
0.5 ms a widget and 0.1 ms an option. A page with one form is not slowed by it, but the quality
signals page has a signed resolution form per open signal (each with a deviation picker of 25): 38
forms took 225 ms of its 279 (benchmarks/README.md, issue 15). These widgets give the same HTML as
Django's templates (``django/forms/widgets/input.html``, ``select.html``, ``textarea.html``: the same
attributes, with the ``aria-*``, ``id`` and ``required`` that ``BoundField`` adds) in a few
microseconds. :func:`python_rendered` swaps them into a form's fields.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe


def flatatt(attrs: dict[str, Any]) -> SafeString:
    """The attributes as ``django/forms/widgets/attrs.html`` writes them: in their order, ``True``
    as the bare name, ``False`` left out, every value escaped."""
    return mark_safe("".join(  # noqa: S308 (each part is format_html, so escaped)
        format_html(" {}", name) if value is True else format_html(' {}="{}"', name, value)
        for name, value in attrs.items() if value is not False))


def _input(widget: TextInput | PasswordInput, name: str, value: Any, attrs: dict[str, Any] | None) -> SafeString:
    final = widget.build_attrs(widget.attrs, attrs)
    shown = widget.format_value(value)
    return format_html('<input type="{}" name="{}"{}{}>', widget.input_type, name,
                       format_html(' value="{}"', shown) if shown is not None else "", flatatt(final))


class TextInput(forms.TextInput):
    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        return _input(self, name, value, attrs)


class PasswordInput(forms.PasswordInput):
    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        return _input(self, name, value if self.render_value else None, attrs)


class Textarea(forms.Textarea):
    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        shown = self.format_value(value)
        return format_html('<textarea name="{}"{}>\n{}</textarea>', name, flatatt(self.build_attrs(self.attrs, attrs)),
                           shown or "")


class Select(forms.Select):
    """A single select of flat choices (a grouped one is left to Django's template)."""

    def render(self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None) -> SafeString:
        choices = list(self.choices)
        if self.allow_multiple_selected or any(isinstance(label, list | tuple) for _, label in choices):
            return super().render(name, value, attrs, renderer)
        selected = set(self.format_value(value))
        options = format_html_join("", '<option value="{}"{}>{}</option>', (
            (v, " selected" if str(v) in selected else "", label) for v, label in choices))
        return format_html('<select name="{}"{}>{}</select>', name, flatatt(self.build_attrs(self.attrs, attrs)),
                           options)


_SWAPS: dict[type[forms.Widget], type[forms.Widget]] = {
    forms.TextInput: TextInput, forms.PasswordInput: PasswordInput, forms.Textarea: Textarea,
    forms.Select: Select,
}


def python_rendered(form: forms.BaseForm) -> forms.BaseForm:
    """``form`` with each plain text, password, textarea and select widget replaced by the one above
    (same attributes and choices); any other widget is left as it is."""
    for field in form.fields.values():
        swap = _SWAPS.get(type(field.widget))
        if swap is not None:
            old = field.widget
            new = swap(attrs=old.attrs)
            for attribute in ("choices", "render_value", "input_type", "is_required"):
                if hasattr(old, attribute):
                    setattr(new, attribute, getattr(old, attribute))
            field.widget = new
    return form
