"""The planner's forms: a site-selection study and a twin study, with sensible defaults. They turn
into the JSON parameters of :mod:`pocare.planning.study`."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from django import forms

from pocare.planning import demand, selection, study, travel


class PlanForm(forms.Form):
    region = forms.CharField(initial="ES", max_length=200,
                             help_text="ISO country code (ES), several (ES,PT), a continent (EU) or US-CA.")
    model = forms.ChoiceField(choices=[("mclp", "Maximal covering (MCLP)"), ("pmedian", "p-median"),
                                       ("lscp", "Set covering (LSCP)"), ("capacitated", "Capacitated p-median")],
                              initial="mclp")
    p = forms.IntegerField(label="Sites to open (p)", initial=8, min_value=1, max_value=200)
    cover_minutes = forms.FloatField(label="Coverage standard (minutes)", initial=120, min_value=10, max_value=600)
    indications = forms.MultipleChoiceField(choices=[(i, i) for i in demand.INDICATIONS], initial=["lbcl"],
                                            widget=forms.CheckboxSelectMultiple)
    candidates = forms.ChoiceField(choices=[("cities", "The largest cities"), ("hospitals", "Hospitals I list")],
                                   initial="cities")
    max_candidates = forms.IntegerField(initial=150, min_value=1, max_value=1000)
    hospitals = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}), max_length=100_000,
                                help_text="One per line: name,latitude,longitude[,units].")
    include_network = forms.BooleanField(required=False, initial=True,
                                         label="Keep the network's current sites open (fixed)")
    max_points = forms.IntegerField(label="Demand points (largest cities)", initial=2000, min_value=10,
                                    max_value=5000)
    min_population = forms.IntegerField(initial=15000, min_value=15000, max_value=10_000_000)
    equity_strength = forms.FloatField(initial=0.0, min_value=0, max_value=10,
                                       help_text="Extra weight for people 2 h or more from an existing centre.")
    circuity = forms.FloatField(initial=travel.DEFAULT_CIRCUITY, min_value=1.0, max_value=3.0)
    speed_kmh = forms.FloatField(initial=travel.DEFAULT_SPEED_KMH, min_value=5, max_value=200)
    units_per_new_site = forms.IntegerField(initial=2, min_value=1, max_value=50)
    time_limit = forms.FloatField(label="Solver time limit (s)", initial=60, min_value=1, max_value=600)

    def clean_hospitals(self) -> list[dict[str, Any]]:
        rows = []
        text = self.cleaned_data.get("hospitals") or ""
        for n, row in enumerate(csv.reader(io.StringIO(text)), 1):
            if not row or not "".join(row).strip():
                continue
            try:
                name, lat, lon = row[0].strip(), float(row[1]), float(row[2])
                units = int(row[3]) if len(row) > 3 and row[3].strip() else 2
            except (IndexError, ValueError) as exc:
                raise forms.ValidationError(f"Line {n}: write name,latitude,longitude[,units].") from exc
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise forms.ValidationError(f"Line {n}: latitude −90…90, longitude −180…180.")
            rows.append({"name": name, "latitude": lat, "longitude": lon, "units": units})
        return rows

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("candidates") == "hospitals" and not data.get("hospitals"):
            self.add_error("hospitals", "List at least one hospital, or choose the largest cities.")
        big = (data.get("max_points") or 0) * (data.get("max_candidates") or 0) > 400_000
        if data.get("model") in ("pmedian", "capacitated") and big:
            self.add_error("max_points", "p-median models: demand points × candidates at most 400,000.")
        if data.get("region"):
            try:
                demand.cities(data["region"], min_population=data.get("min_population") or 15000)
            except ValueError as exc:
                self.add_error("region", str(exc).partition(": ")[2] or str(exc))
        return data

    def parameters(self, existing: list[dict[str, Any]]) -> dict[str, Any]:
        d = self.cleaned_data
        keys = set(study.PLAN_DEFAULTS) & set(d)
        params = {k: d[k] for k in keys}
        params["region"] = d["region"].upper()
        params["existing"] = existing if d["include_network"] else []
        assert params["model"] in selection.MODELS
        return params


class TwinForm(forms.Form):
    source = forms.ChoiceField(choices=[("synthetic", "A synthetic network (sites × regions)"),
                                        ("live", "The live network (sites, units and batch records)")],
                               initial="synthetic")
    scenario = forms.ChoiceField(choices=[(s, s) for s in study.SCENARIOS], initial="baseline",
                                 help_text="centralized: all units at the hub; units: set a site's units; outage: "
                                           "close a site for some days; disruption: a material missing for weeks; "
                                           "supply: a supplier or material stopped for weeks, run with and without "
                                           "the regional depots' stock.")
    sites = forms.IntegerField(initial=30, min_value=1, max_value=200, help_text="Synthetic network only.")
    referrals_per_year = forms.FloatField(
        required=False, min_value=1, max_value=200_000,
        help_text="Blank: for the live network, the therapy orders of the last year at each site, extrapolated; "
                  "for a synthetic network 10,000.")
    units_per_site = forms.IntegerField(initial=10, min_value=1, max_value=100, help_text="Synthetic network only.")
    site = forms.CharField(required=False, max_length=8, help_text="Site code for units/outage (default: the first).")
    hub = forms.CharField(required=False, max_length=8, help_text="Hub for centralized (default: the first site).")
    units = forms.IntegerField(initial=0, min_value=0, max_value=100)
    start_day = forms.FloatField(initial=90, min_value=0, max_value=3650)
    days = forms.FloatField(label="Outage days", initial=28, min_value=0, max_value=3650)
    weeks = forms.FloatField(label="Disruption weeks", initial=4, min_value=1, max_value=104)
    material = forms.CharField(initial="lentiviral vector", max_length=100,
                               help_text="Disruption/supply: the material's code (the live network's bill of "
                                         "materials); blank with a supplier.", required=False)
    supplier = forms.CharField(required=False, max_length=120,
                               help_text="Supply: stop this supplier (every material only it supplies) instead.")
    kits_per_site = forms.FloatField(required=False, min_value=0, max_value=10_000,
                                     help_text="Synthetic network, supply: kits of the material at each site.")
    depot_kits = forms.FloatField(required=False, min_value=0, max_value=100_000,
                                  help_text="Synthetic network, supply: kits in one depot serving every site.")
    lead_time_days = forms.FloatField(required=False, min_value=0, max_value=365,
                                      help_text="Days from the disruption's end to the first delivery. Blank: the "
                                                "approved suppliers' lead times (live), none (synthetic).")
    replications = forms.IntegerField(initial=4, min_value=1, max_value=50)
    seed = forms.IntegerField(initial=1, min_value=0, max_value=2**31)
    horizon_days = forms.FloatField(initial=365, min_value=30, max_value=3650)

    def __init__(self, *args: Any, suppliers: dict[str, tuple[str, ...]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if suppliers:
            field = self.fields["supplier"]
            field.help_text = (f"{field.help_text} The live network's sole suppliers: "
                               + "; ".join(f"{name} ({', '.join(codes)})" for name, codes in suppliers.items()) + ".")
            vector = [name for name, codes in suppliers.items() if any(c.upper().startswith("LV") for c in codes)]
            if vector:  # the disruption a planner asks about first: the lentiviral vector's supplier
                field.initial = vector[0]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("scenario") == "supply" and not (data.get("material") or data.get("supplier")):
            self.add_error("material", "Name a material or a supplier to stop.")
        return data

    def parameters(self, network: dict[str, Any] | None) -> dict[str, Any]:
        d = dict(self.cleaned_data)
        d.pop("source")
        for key in ("referrals_per_year", "kits_per_site", "depot_kits"):
            if d[key] is None:
                d.pop(key)
        d["network"] = network
        return d


class BusinessCaseForm(forms.Form):
    """What a site's business case is asked for (a GET form: the page is a read)."""

    site = forms.ChoiceField(required=False, help_text="A manufacturing site whose costs you may read.")
    patients_max = forms.IntegerField(label="Patients a year, up to", initial=60, required=False, min_value=1,
                                      max_value=500)
    failure_rate = forms.DecimalField(
        required=False, min_value=0, max_value=Decimal("0.9"), max_digits=5, decimal_places=4,
        help_text="Share of batches that fail and are made again (0–0.9). Blank: the site's aborted batches if it "
                  "has finished at least 5, else 0.0487 (the twin's published rates).")
    process_days = forms.DecimalField(
        required=False, min_value=Decimal("0.5"), max_value=60, max_digits=7, decimal_places=4,
        help_text="Device and cleanroom days per batch (0.5–60). Blank: the median of the site's completed batches, "
                  "else 10.33 (Zhu 2018: 8–13 days).")
    max_wait_days = forms.DecimalField(label="Longest mean wait for a device (days)", initial=7, required=False,
                                       min_value=Decimal("0.5"), max_value=90, max_digits=6, decimal_places=2)
    twin_sites = forms.IntegerField(label="Twin: sites", initial=4, required=False, min_value=2, max_value=12,
                                    help_text="The decentralized network of the twin comparison (2 devices a site).")
    twin_patients = forms.IntegerField(label="Twin: referrals a year per site", initial=30, required=False,
                                       min_value=1, max_value=200)

    def __init__(self, *args: Any, sites: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["site"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(code, code) for code in sites]
        if sites:
            field.initial = sites[0]

    def values(self) -> dict[str, Any]:
        """The cleaned values, or the initial ones when the form was not filled in."""
        given = dict(self.cleaned_data) if self.is_bound else {}
        return {name: given[name] if given.get(name) not in (None, "") else field.initial
                for name, field in self.fields.items()}
