"""Forms of the batch record. The step form is built from the master file's step definition:
one field per parameter (typed as the master file says), one lot per bill-of-materials line."""

from __future__ import annotations

from typing import Any

from django import forms

from pocare.core.fields import DateField, DateTimeField
from pocare.core.units import amount_text, quantity_text, unit_text
from pocare.ledger.forms import ReadingCorrectionForm, SignatureFieldsMixin
from pocare.manufacturing.models import FEFO_REASON_MAX
from pocare.manufacturing.questions import FirstOut


class BatchStartForm(SignatureFieldsMixin):
    unit = forms.ChoiceField(label="Manufacturing unit")
    presented_identifier = forms.CharField(
        label="Scan the starting material (DIN)", max_length=80,
        help_text="Scan the DIN on the apheresis bag; it must match the collection of this order.")
    reason = forms.CharField(label="Comment", required=False, max_length=500)

    def __init__(self, *args: Any, units: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["unit"].choices = units  # type: ignore[attr-defined]


def _parameter_field(p: dict[str, Any]) -> forms.Field:
    unit = f" ({unit_text(p['unit'])})" if p.get("unit") else ""
    label = f"{p['name']}{unit}" + (" — critical" if p.get("critical") else "")
    bounds = []
    if p.get("min") is not None:
        bounds.append(f"min {p['min']}")
    if p.get("max") is not None:
        bounds.append(f"max {p['max']}")
    if p.get("target") is not None:
        bounds.append(f"target {p['target']}")
    help_text = ", ".join(bounds)
    kind = p.get("type")
    if kind == "lot":
        return forms.CharField(label=label, required=False, max_length=60,
                               help_text=f"Filled from the lot of {p.get('material')} chosen under Materials; "
                                         "leave empty, or type it to have it checked against that lot.")
    if kind in ("number", "integer"):
        # A text input so that an out-of-range or malformed value reaches the server's check and
        # its message, instead of being stopped silently by the browser.
        return forms.CharField(label=label, help_text=help_text, required=False,
                               widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}))
    if kind == "boolean":
        return forms.ChoiceField(label=label, help_text=help_text, required=False,
                                 choices=[("", "—"), ("true", "Yes"), ("false", "No")])
    if kind == "choice":
        return forms.ChoiceField(label=label, help_text=help_text, required=False,
                                 choices=[("", "—"), *[(c, c) for c in p.get("choices") or []]])
    return forms.CharField(label=label, help_text=help_text, required=False, max_length=500)


class StepRecordForm(SignatureFieldsMixin):
    """Values, lots, notes, and — for a critical value out of range or a critical step outside its
    time window — the deviation."""

    notes = forms.CharField(label="Notes", required=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=2000)
    deviation = forms.CharField(
        label="Raise a deviation", required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=4000,
        help_text="Only when a critical value is out of range, or a critical step is outside its time window: "
                  "describe what happened. The deviation is opened with the value or the window, and the step is "
                  "recorded.")

    def __init__(self, *args: Any, step: dict[str, Any], lots: dict[str, list[tuple[str, str]]],
                 proposed: dict[str, FirstOut] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.step = step
        proposed = proposed or {}
        # A derived parameter has no field: it is read from its record and shown read-only.
        self.typed = [p for p in step.get("parameters", []) if p.get("type") != "derived"]
        for p in self.typed:
            self.fields[f"v_{p['id']}"] = _parameter_field(p)
        order = [f"v_{p['id']}" for p in self.typed]
        for m in step.get("materials", []):
            first = proposed.get(m["code"])
            choices = [(value, f"{label} — expires first, proposed ({amount_text(first.in_stock)} in stock)"
                        if first is not None and value == str(first.lot_id) else label)
                       for value, label in lots.get(m["code"], [])]
            self.fields[f"m_{m['code']}"] = forms.ChoiceField(
                label=f"{m['name']} ({quantity_text(m['quantity'], m['unit'])})", required=False,
                choices=[("", "— choose the lot —"), *choices],
                initial=str(first.lot_id) if first is not None else None,
                help_text=f"Material {m['code']}: only lots released, unexpired and at this site are accepted."
                          + (" The lot that expires first is proposed." if first is not None else ""))
            order.append(f"m_{m['code']}")
            if first is not None:
                self.fields[f"fefo_{m['code']}"] = forms.CharField(
                    label=f"Why not lot {first.lot_number}?", required=False, max_length=FEFO_REASON_MAX,
                    # Shown once another lot is chosen (pocare.js); always shown without script.
                    widget=forms.TextInput(attrs={"data-hide-while": f"id_m_{m['code']}={first.lot_id}"}),
                    help_text=f"Only if you take a lot of {m['code']} that expires after {first.lot_number} "
                              f"({first.expiry_date:%Y-%m-%d}): first expiry, first out. Kept with the use.")
                order.append(f"fefo_{m['code']}")
        # Signature fields last.
        order += ["notes", "deviation"]
        self.order_fields(order + [f for f in self.fields if f not in order])

    def parameter_fields(self) -> list[forms.BoundField]:
        return [self[f"v_{p['id']}"] for p in self.typed]

    def material_fields(self) -> list[forms.BoundField]:
        """Each material's lot, followed by its first-expiry reason where a lot is proposed."""
        return [self[name] for m in self.step.get("materials", [])
                for name in (f"m_{m['code']}", f"fefo_{m['code']}") if name in self.fields]

    def values(self) -> dict[str, Any]:
        return {p["id"]: self.cleaned_data.get(f"v_{p['id']}", "") for p in self.typed}

    def materials(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for m in self.step.get("materials", []):
            chosen = self.cleaned_data.get(f"m_{m['code']}")
            lot = int(chosen) if chosen and str(chosen).isdigit() else chosen
            reason = self.cleaned_data.get(f"fefo_{m['code']}", "")
            out[m["code"]] = {"lot": lot, "fefo_reason": reason} if reason else lot
        return out

    def field_for(self, service_field: str) -> str | None:
        """The form field that shows a service error on ``values.<id>`` or ``materials.<code>``."""
        if service_field.startswith("values."):
            return f"v_{service_field.split('.', 1)[1]}"
        if service_field.startswith("materials."):
            return f"m_{service_field.split('.', 1)[1]}"
        return None


class StepVerifyForm(SignatureFieldsMixin):
    comment = forms.CharField(label="Comment", required=False, max_length=500)


class StepSkipForm(SignatureFieldsMixin):
    reason = forms.CharField(label="Why this step does not apply", max_length=1000)


class CorrectionForm(SignatureFieldsMixin):
    new_value = forms.CharField(label="Corrected value", max_length=500)
    reason = forms.CharField(label="Reason for the correction", max_length=1000,
                             widget=forms.Textarea(attrs={"rows": 2}))


__all__ = ["ReadingCorrectionForm"]  # device readings are corrected with the ledger's form


class QcResultForm(SignatureFieldsMixin):
    value = forms.CharField(label="Result", max_length=100)
    tested_at = DateTimeField(label="Read at (UTC)", required=False,
                                    help_text="When the result was read; empty means now. Format 2026-12-01 14:30.")
    reason = forms.CharField(label="Reason for the correction", max_length=1000, required=False)


class LotReceiveForm(forms.Form):
    material_code = forms.CharField(label="Material code", max_length=64)
    name = forms.CharField(label="Name", max_length=200, required=False)
    lot_number = forms.CharField(label="Lot number", max_length=60)
    supplier = forms.CharField(label="Supplier", max_length=120, required=False)
    expiry_date = DateField(label="Expiry date")
    reason = forms.CharField(label="Reason", max_length=500, initial="Goods receipt")


class LotDecideForm(SignatureFieldsMixin):
    decision = forms.ChoiceField(choices=[("released", "Release"), ("rejected", "Reject")])
    reason = forms.CharField(label="Reason", max_length=500)
