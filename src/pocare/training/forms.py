"""Forms of the training pages. They only parse input; the services decide."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.db.models import QuerySet

from pocare.accounts.models import User
from pocare.accounts.roles import Role
from pocare.core.fields import DateField, DateTimeField
from pocare.ledger.forms import SignatureFieldsMixin
from pocare.masterfile import schema
from pocare.masterfile.models import MasterFileVersion
from pocare.network.models import Site
from pocare.training.models import CurriculumItem, Qualification, TrainingKind

#: Master-file versions offered in the forms (the model lives in the masterfile app).
TRAINABLE = ("approved", "effective", "superseded")


def _versions(statuses: tuple[str, ...] | None = None) -> QuerySet[Any]:
    qs = MasterFileVersion.objects.select_related("product").order_by("product__code", "-number")
    return qs.filter(status__in=statuses) if statuses else qs.exclude(status="draft")


class ChoiceOfRecord(forms.ModelChoiceField):  # type: ignore[type-arg]
    """A model choice that refuses values no database can hold (NUL), as an invalid choice
    rather than a database error."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class VersionChoiceField(ChoiceOfRecord):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.product.code} v{obj.number} ({obj.get_status_display().lower()})"


class PersonChoiceField(ChoiceOfRecord):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.printed_name or obj.username} ({obj.username})"


class SiteChoiceField(ChoiceOfRecord):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.code} — {obj.name}"


class RecordForm(SignatureFieldsMixin):
    """The trainer records a training event and signs it (meaning: verified)."""

    trainee = forms.CharField(label="Trainee (user id)", max_length=150,
                              widget=forms.TextInput(attrs={"list": "trainees", "autocomplete": "off"}),
                              help_text="The person trained. For a cross-site rotation, the visitor's user id.")
    site = SiteChoiceField(queryset=Site.objects.none(), to_field_name="code", label="Site",
                           help_text="Where the training took place (for a rotation: the host site).")
    kind = forms.ChoiceField(label="Kind of training", choices=TrainingKind.choices)
    title = forms.CharField(label="Title", max_length=200,
                            help_text="What was trained, e.g. “Prodigy operation — initial course”.")
    trained_on = DateField(label="Date of the training")
    qualification = ChoiceOfRecord(
        queryset=Qualification.objects.order_by("code"), required=False, to_field_name="code",
        help_text="The qualification this training grants once both have signed (if passed).")
    masterfile_version = VersionChoiceField(queryset=_versions(TRAINABLE).none(), required=False,
                                            label="Master-file version", help_text="For version training only.")
    steps = forms.CharField(label="Steps covered", required=False, max_length=2000,
                            help_text="For version training: the step ids, separated by commas.")
    score = forms.DecimalField(label="Score (%)", required=False, min_value=0, max_value=100, decimal_places=2,
                               max_digits=5)
    pass_mark = forms.DecimalField(label="Pass mark (%)", required=False, min_value=0, max_value=100,
                                   decimal_places=2, max_digits=5,
                                   help_text="Leave empty to use the qualification's pass mark.")
    passed = forms.BooleanField(label="Passed: the trainee met the training's objectives", required=False,
                                initial=True, help_text="With a score, the score decides.")
    notes = forms.CharField(label="Notes", required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2}))
    field_order = ["trainee", "site", "kind", "title", "trained_on", "qualification", "masterfile_version", "steps",
                   "score", "pass_mark", "passed", "notes", "username", "password"]

    def __init__(self, *args: Any, sites: QuerySet[Site], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = sites  # type: ignore[attr-defined]
        self.fields["masterfile_version"].queryset = _versions(TRAINABLE)  # type: ignore[attr-defined]

    def clean_trainee(self) -> User:
        username = self.cleaned_data["trainee"].strip()
        person = User.objects.filter(username=username).first()
        if person is None:
            raise forms.ValidationError(f"There is no person with the user id {username!r}.")
        return person

    def clean_steps(self) -> list[str]:
        raw = self.cleaned_data.get("steps") or ""
        return [s.strip() for s in raw.replace(";", ",").replace("\n", ",").split(",") if s.strip()]

    def service_kwargs(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        scored = data.get("score") is not None
        return {
            "trainee": data["trainee"], "site": data["site"], "kind": data["kind"], "title": data["title"],
            "trained_on": data["trained_on"], "qualification": data.get("qualification"),
            "masterfile_version": data.get("masterfile_version"), "steps": data.get("steps") or [],
            "score": data.get("score"), "pass_mark": data.get("pass_mark"),
            "passed": None if scored else bool(data.get("passed")), "notes": data.get("notes", ""),
        }


class AcknowledgeForm(SignatureFieldsMixin):
    """The trainee signs their training record (meaning: performed)."""

    record = forms.IntegerField(widget=forms.HiddenInput)
    field_order = ["record", "username", "password"]


class QualificationForm(forms.Form):
    code = forms.SlugField(label="Code", max_length=50,
                           help_text="Short id used by master-file steps, e.g. prodigy-operation.")
    name = forms.CharField(label="Name", max_length=200)
    description = forms.CharField(label="Description", required=False, max_length=4000,
                                  widget=forms.Textarea(attrs={"rows": 2}))
    validity_months = forms.IntegerField(label="Valid for (months)", min_value=1, max_value=120, initial=12)
    pass_mark = forms.DecimalField(label="Assessment pass mark (%)", required=False, min_value=0, max_value=100,
                                   decimal_places=2, max_digits=5)
    reason = forms.CharField(label="Reason", max_length=1000)


class CurriculumForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=[("", "Choose a role…"), *Role.choices])
    qualification = ChoiceOfRecord(queryset=Qualification.objects.order_by("code"), to_field_name="code")
    reason = forms.CharField(label="Reason", max_length=1000)


class CurriculumRemoveForm(forms.Form):
    item = ChoiceOfRecord(queryset=CurriculumItem.objects.all())
    reason = forms.CharField(label="Reason", max_length=1000)


class RevokeForm(forms.Form):
    qualification = ChoiceOfRecord(queryset=Qualification.objects.all(), to_field_name="code")
    reason = forms.CharField(label="Reason", max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))


class GateForm(forms.Form):
    """Ask the gate: person, site, version, and optionally one step and a moment."""

    person = PersonChoiceField(queryset=User.objects.none(), to_field_name="username", label="Person")
    site = SiteChoiceField(queryset=Site.objects.none(), to_field_name="code", label="Site")
    version = VersionChoiceField(queryset=_versions().none(), label="Master-file version")
    step = forms.ChoiceField(label="Step", required=False, choices=[("", "Every step")])
    at = DateTimeField(label="At (UTC)", required=False,
                             widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
                             help_text="Leave empty for now; a past moment answers “was it allowed then?”.")
    verifying = forms.BooleanField(label="As the verifying second person", required=False)

    def __init__(self, *args: Any, people: QuerySet[User], sites: QuerySet[Site], versions: QuerySet[Any],
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["person"].queryset = people  # type: ignore[attr-defined]
        self.fields["site"].queryset = sites  # type: ignore[attr-defined]
        versions = versions.exclude(status="draft").order_by("product__code", "-number")
        self.fields["version"].queryset = versions  # type: ignore[attr-defined]
        chosen = versions.filter(pk=self.data.get("version")).first() if str(self.data.get("version", "")).isdigit() \
            else None
        if chosen is not None:
            choices = [("", "Every step")] + [
                (s["id"], f"{s['id']} — {s.get('name', '')}") for s in schema.iter_steps(chosen.content or {})
            ]
            self.fields["step"].choices = choices  # type: ignore[attr-defined]

    def clean_at(self) -> dt.datetime | None:
        value: dt.datetime | None = self.cleaned_data.get("at")
        if value is not None:
            value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
        return value
