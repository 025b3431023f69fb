"""Forms of the supply pages: the trace (a lot forward, a patient back) and a recall opened or closed."""

from __future__ import annotations

from typing import Any

from django import forms

from pocare.ledger.forms import SignatureFieldsMixin


class TraceForm(forms.Form):
    """What to trace: a material and a supplier's lot number (forward), or a patient (back)."""

    material_code = forms.ChoiceField(label="Material", required=False)
    lot_number = forms.CharField(label="Lot number", max_length=60, required=False,
                                 help_text="As the supplier prints it on the lot.")
    patient = forms.CharField(label="Patient, chain of identity or batch", max_length=40, required=False,
                              help_text=("The hospital's pseudonym, the chain of identity as on the bag label, or the "
                                         "batch reference."))

    def __init__(self, *args: Any, materials: dict[str, dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["material_code"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "—")] + [
            (code, f"{code} — {m['name']}") for code, m in sorted(materials.items())]

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        material, lot, patient = (data.get("material_code"), (data.get("lot_number") or "").strip(),
                                  (data.get("patient") or "").strip())
        data["lot_number"], data["patient"] = lot, patient
        if patient and (material or lot):
            self.add_error("patient", "Trace either a lot (material and lot number) or a patient, not both.")
        elif (material or lot) and not (material and lot):
            self.add_error("lot_number" if material else "material_code",
                           "A lot is traced by its material and its lot number: give both.")
        return data

    @property
    def asked(self) -> bool:
        return self.is_bound and any((self.data.get(k) or "").strip() for k in ("material_code", "lot_number",
                                                                                  "patient"))


class RecallOpenForm(SignatureFieldsMixin):
    material_code = forms.CharField(widget=forms.HiddenInput, max_length=64)
    lot_number = forms.CharField(widget=forms.HiddenInput, max_length=60)
    reason = forms.CharField(label="Why the lot is recalled", max_length=2000,
                             widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="The supplier's notice, the complaint or the finding, with its reference.")
    field_order = ["material_code", "lot_number", "reason", "username", "password"]


class RecallCloseForm(SignatureFieldsMixin):
    outcome = forms.CharField(label="Outcome", max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
                              help_text="What was destroyed or returned to the supplier, or why the lot is cleared.")
    field_order = ["outcome", "username", "password"]
