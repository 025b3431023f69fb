"""Forms of the supply pages: the trace (a lot forward, a patient back), a recall opened or closed, stock
moved, transfers and purchases, and the materials page (storage, approved suppliers, lead times)."""

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


class ReceiveForm(forms.Form):
    """A delivery of a supplier's lot into a location (the lot is in quarantine until released)."""

    location: forms.ModelChoiceField[Any] = forms.ModelChoiceField(queryset=None, label="Into")
    supplier: forms.ModelChoiceField[Any] = forms.ModelChoiceField(queryset=None, label="Supplier")
    material_code = forms.ChoiceField(label="Material")
    lot_number = forms.CharField(label="Supplier's lot number", max_length=60)
    expiry_date = forms.DateField(label="Expiry date", widget=forms.DateInput(attrs={"type": "date"}))
    quantity = forms.CharField(label="Quantity", max_length=20,
                               help_text="In the master file's unit for the material (kit, vial, bag, mL…).")
    reason = forms.CharField(label="Reason", max_length=500, initial="Goods receipt, delivery note checked")

    def __init__(self, *args: Any, locations: Any, suppliers: Any, materials: dict[str, dict[str, Any]],
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["location"].queryset = locations  # type: ignore[attr-defined]
        self.fields["supplier"].queryset = suppliers  # type: ignore[attr-defined]
        field = self.fields["material_code"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(code, f"{code} — {m['name']} ({m['unit']})") for code, m in sorted(materials.items())]


class _AtLocation(forms.Form):
    location: forms.ModelChoiceField[Any] = forms.ModelChoiceField(queryset=None, label="Location")

    def __init__(self, *args: Any, locations: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["location"].queryset = locations  # type: ignore[attr-defined]


class DecideForm(SignatureFieldsMixin):
    decision = forms.ChoiceField(choices=[("released", "Release"), ("rejected", "Reject")])
    reason = forms.CharField(label="Reason", max_length=500, initial="Certificate of analysis checked")
    field_order = ["decision", "reason", "username", "password"]


class CountForm(SignatureFieldsMixin):
    location: forms.ModelChoiceField[Any] = forms.ModelChoiceField(queryset=None, label="Location")
    counted = forms.CharField(label="Counted", max_length=20, help_text="What is on the shelf, in the lot's unit.")
    reason = forms.CharField(label="Reason", max_length=500, initial="Cycle count")
    field_order = ["location", "counted", "reason", "username", "password"]

    def __init__(self, *args: Any, locations: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["location"].queryset = locations  # type: ignore[attr-defined]


class TransferForm(forms.Form):
    source: forms.ModelChoiceField[Any] = forms.ModelChoiceField(queryset=None, label="From")
    destination: forms.ModelChoiceField[Any] = forms.ModelChoiceField(queryset=None, label="To")
    quantity = forms.CharField(label="Quantity", max_length=20)
    reason = forms.CharField(label="Reason", max_length=500)

    def __init__(self, *args: Any, locations: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["source"].queryset = locations  # type: ignore[attr-defined]
        self.fields["destination"].queryset = locations  # type: ignore[attr-defined]


class DestroyForm(_AtLocation):
    quantity = forms.CharField(label="Quantity", max_length=20)
    reason = forms.CharField(label="Reason", max_length=500, help_text="Damaged, rejected, recalled…")


class IssueForm(_AtLocation):
    """Material given to a batch in progress outside its steps' bill (a replacement, a spare kit)."""

    batch: forms.ModelChoiceField[Any] = forms.ModelChoiceField(queryset=None, label="Batch",
                                                                help_text="A batch in progress at the lot's site.")
    quantity = forms.CharField(label="Quantity", max_length=20, help_text="In the lot's unit.")
    reason = forms.CharField(label="Reason", max_length=500, help_text="A replacement, a spare kit…")
    field_order = ["location", "batch", "quantity", "reason"]

    def __init__(self, *args: Any, locations: Any, batches: Any, **kwargs: Any) -> None:
        super().__init__(*args, locations=locations, **kwargs)
        self.fields["batch"].queryset = batches  # type: ignore[attr-defined]


class ReturnForm(IssueForm):
    """What a batch took of the lot (issued or consumed at a step) and did not use, back to stock."""

    reason = forms.CharField(label="Reason", max_length=500, initial="Not used: returned to stock")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["batch"].help_text = "A batch that took this lot."
        self.fields["location"].label = "Back to"


class ExpireForm(_AtLocation):
    reason = forms.CharField(label="Reason", max_length=500, initial="Expired: written off")


class DispatchForm(forms.Form):
    """Send stock of a lot to a location at another site, with its logger and custody data."""

    source: forms.ModelChoiceField[Any] = forms.ModelChoiceField(queryset=None, label="From")
    lot: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None, label="Lot", help_text="Released, unexpired lots at the sites whose materials you manage.")
    destination: forms.ModelChoiceField[Any] = forms.ModelChoiceField(queryset=None, label="To")
    quantity = forms.CharField(label="Quantity", max_length=20, help_text="In the lot's unit.")
    logger_id = forms.CharField(label="Data logger", max_length=60,
                                help_text="Its limits are the material's storage range (the materials page).")
    carrier = forms.CharField(label="Carrier", max_length=120, help_text="The courier or driver who takes it.")
    seal = forms.CharField(label="Seal number", max_length=60)
    reason = forms.CharField(label="Reason", max_length=500, initial="Supply from the regional depot")
    field_order = ["source", "lot", "destination", "quantity", "logger_id", "carrier", "seal", "reason"]

    def __init__(self, *args: Any, sources: Any, lots: Any, destinations: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["source"].queryset = sources  # type: ignore[attr-defined]
        self.fields["lot"].queryset = lots  # type: ignore[attr-defined]
        self.fields["destination"].queryset = destinations  # type: ignore[attr-defined]
        for name in ("source", "destination"):
            self.fields[name].label_from_instance = (  # type: ignore[attr-defined]
                lambda loc: f"{loc.site.code} {loc.code} — {loc.name}")
        self.fields["lot"].label_from_instance = (  # type: ignore[attr-defined]
            lambda lot: f"{lot.site.code}: {lot.material_code} lot {lot.lot_number} (expires {lot.expiry_date})")


class ReadingsForm(forms.Form):
    csv_file = forms.FileField(label="Logger readings (CSV)",
                               help_text="Columns timestamp,temperature_c; ISO 8601 times with an offset or Z.")


class TransferReceiveForm(forms.Form):
    handed_over_by = forms.CharField(label="Handed over by", max_length=120,
                                     help_text="The courier or driver who handed the goods over.")
    seal_intact = forms.TypedChoiceField(label="Seal", choices=[("yes", "Intact"), ("no", "Broken or missing")],
                                         coerce=lambda v: v == "yes")
    arrived_at = forms.DateTimeField(label="Arrived at (UTC)", required=False,
                                     widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                     help_text="Empty: now.")
    reason = forms.CharField(label="Reason", max_length=500, initial="Goods received, shipper and labels checked")


class PurchaseRequestForm(forms.Form):
    """A purchase request for a site and material, as the reorder page proposes it."""

    site: forms.ModelChoiceField[Any] = forms.ModelChoiceField(queryset=None, label="Site")
    material_code = forms.ChoiceField(label="Material")
    supplier: forms.ModelChoiceField[Any] = forms.ModelChoiceField(queryset=None, label="Approved supplier")
    quantity = forms.CharField(label="Quantity", max_length=20, help_text="In the master file's unit.")
    proposed = forms.CharField(widget=forms.HiddenInput, required=False, max_length=20)
    reason = forms.CharField(label="Reason", max_length=500, initial="Below the reorder point")

    def __init__(self, *args: Any, sites: Any, suppliers: Any, materials: dict[str, dict[str, Any]],
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites  # type: ignore[attr-defined]
        self.fields["supplier"].queryset = suppliers  # type: ignore[attr-defined]
        field = self.fields["material_code"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(code, f"{code} — {m['name']} ({m['unit']})") for code, m in sorted(materials.items())]


class PurchaseApproveForm(SignatureFieldsMixin):
    reason = forms.CharField(label="Reason", max_length=500, initial="Needed for the booked schedule")
    field_order = ["reason", "username", "password"]


class PurchaseOrderForm(forms.Form):
    order_number = forms.CharField(label="Supplier's order number", max_length=60)


class PurchaseReceiveForm(forms.Form):
    lots: forms.ModelMultipleChoiceField[Any] = forms.ModelMultipleChoiceField(
        queryset=None, label="Received as", help_text="The lots received on the stock page for this delivery.")
    reason = forms.CharField(label="Reason", max_length=500, initial="Delivered in full")

    def __init__(self, *args: Any, lots: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["lots"].queryset = lots  # type: ignore[attr-defined]


class PurchaseDeliveryForm(forms.Form):
    """One delivery against an ordered request: the supplier's lot, received into quarantine at a location."""

    location: forms.ModelChoiceField[Any] = forms.ModelChoiceField(queryset=None, label="Into")
    lot_number = forms.CharField(label="Supplier's lot number", max_length=60)
    expiry_date = forms.DateField(label="Expiry date", widget=forms.DateInput(attrs={"type": "date"}))
    quantity = forms.CharField(label="Quantity delivered", max_length=20, help_text="At most what is outstanding.")
    unit_price = forms.CharField(label="Invoice price a unit", max_length=20, required=False,
                                 help_text="The price of one unit on the invoice, in the cost model's "
                                           "currency; finance drafts the lot's price from it.")
    reason = forms.CharField(label="Reason", max_length=500, initial="Delivery note checked against the order")

    def __init__(self, *args: Any, locations: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["location"].queryset = locations  # type: ignore[attr-defined]


class PurchaseCancelForm(forms.Form):
    reason = forms.CharField(label="Why it is cancelled", max_length=500)


class DispositionForm(SignatureFieldsMixin):
    """QA's decision on stock held on a transfer, signed."""

    decision = forms.ChoiceField(label="Decision", choices=[("released", "Release back to use"),
                                                            ("destroyed", "Reject and destroy")])
    reason = forms.CharField(label="Reason", max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="The impact assessment: the excursion against the material's stability data.")
    field_order = ["decision", "reason", "username", "password"]


def _material_choices(materials: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    return [(code, f"{code} — {m['name']} ({m['unit']})") for code, m in sorted(materials.items())]


class StorageForm(forms.Form):
    """A material's storage range and condition (Control Site QA)."""

    material_code = forms.ChoiceField(label="Material")
    min_celsius = forms.CharField(label="Lowest °C", max_length=12, required=False, help_text="Empty: no lowest.")
    max_celsius = forms.CharField(label="Highest °C", max_length=12, required=False,
                                  help_text="Empty: no highest (e.g. ≤ -150 °C has only a highest).")
    condition = forms.CharField(label="Condition", max_length=120, help_text="As on the label, e.g. Refrigerated.")
    reason = forms.CharField(label="Reason", max_length=500, initial="Supplier's storage conditions")

    def __init__(self, *args: Any, materials: dict[str, dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["material_code"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = _material_choices(materials)


class SupplierApproveForm(SignatureFieldsMixin):
    """Approve a qualified supplier for a material, signed."""

    supplier: forms.ModelChoiceField[Any] = forms.ModelChoiceField(queryset=None, label="Supplier")
    material_code = forms.ChoiceField(label="Material")
    lead_time_days = forms.IntegerField(label="Lead time (days)", min_value=1, max_value=365, initial=14)
    reason = forms.CharField(label="Reason", max_length=500, initial="Specification and certificate of analysis agreed")
    field_order = ["supplier", "material_code", "lead_time_days", "reason", "username", "password"]

    def __init__(self, *args: Any, suppliers: Any, materials: dict[str, dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["supplier"].queryset = suppliers  # type: ignore[attr-defined]
        field = self.fields["material_code"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = _material_choices(materials)


class SupplierRegisterForm(SignatureFieldsMixin):
    """Register a new supplier with its first qualification, signed (a lot from an unregistered supplier
    cannot be received)."""

    name = forms.CharField(label="Supplier's name", max_length=120, help_text="As on its certificates of analysis.")
    status = forms.ChoiceField(label="Qualification")
    reason = forms.CharField(label="Reason", max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="The qualification audit or questionnaire, with its reference.")
    field_order = ["name", "status", "reason", "username", "password"]

    def __init__(self, *args: Any, statuses: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["status"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = statuses


class SupplierQualifyForm(SignatureFieldsMixin):
    """Change a supplier's qualification (approved, conditional, disqualified), signed."""

    supplier: forms.ModelChoiceField[Any] = forms.ModelChoiceField(queryset=None, label="Supplier")
    status = forms.ChoiceField(label="Qualification")
    reason = forms.CharField(label="Reason", max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="The audit, the complaint or the finding, with its reference.")
    field_order = ["supplier", "status", "reason", "username", "password"]

    def __init__(self, *args: Any, suppliers: Any, statuses: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["supplier"].queryset = suppliers  # type: ignore[attr-defined]
        field = self.fields["status"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = statuses


class LeadTimeForm(forms.Form):
    """An approved supplier's lead time for its material."""

    approval: forms.ModelChoiceField[Any] = forms.ModelChoiceField(queryset=None, label="Approved supplier")
    lead_time_days = forms.IntegerField(label="Lead time (days)", min_value=1, max_value=365)
    reason = forms.CharField(label="Reason", max_length=500, initial="Supplier's confirmed delivery time")

    def __init__(self, *args: Any, approvals: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["approval"].queryset = approvals  # type: ignore[attr-defined]
        self.fields["approval"].label_from_instance = (  # type: ignore[attr-defined]
            lambda a: f"{a.material_code}: {a.supplier.name} ({a.lead_time_days} days)")
