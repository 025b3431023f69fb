"""Training over the API (read): qualifications, training records with their signatures, the
training matrix, and the gate that devices and the batch record ask before a step."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pocare.accounts.roles import Perm
from pocare.core.fields import ApiDateTimeField
from pocare.ledger.canonical import content_hash
from pocare.ledger.models import Signature
from pocare.ledger.signing import signatures_for
from pocare.ledger.verify import signature_status
from pocare.masterfile.selectors import versions_visible
from pocare.training import selectors
from pocare.training.filters import RecordFilter
from pocare.training.gate import step_gate
from pocare.training.models import Qualification, TrainingRecord


class QualificationSerializer(serializers.ModelSerializer[Qualification]):
    required_of = serializers.SerializerMethodField(help_text="Roles whose curriculum requires it.")

    class Meta:
        model = Qualification
        fields = ["id", "code", "name", "description", "validity_months", "pass_mark", "required_of"]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_required_of(self, obj: Qualification) -> list[str]:
        return [item.role for item in obj.curriculum.all()]


class QualificationList(generics.ListAPIView[Qualification]):
    """Qualifications of the network and the roles that require them."""

    required_perm = Perm.TRAINING_VIEW
    serializer_class = QualificationSerializer

    def get_queryset(self) -> Any:
        return selectors.qualifications_visible(self.request.user)


class RecordSignatureSerializer(serializers.Serializer[Any]):
    signer_username = serializers.CharField()
    signer_printed_name = serializers.CharField()
    meaning = serializers.CharField()
    signed_at = ApiDateTimeField()
    record_hash = serializers.CharField()
    valid = serializers.BooleanField()
    invalid_reason = serializers.CharField()


class RecordSerializer(serializers.ModelSerializer[TrainingRecord]):
    trainee = serializers.CharField(source="trainee.username", read_only=True)
    trainee_printed_name = serializers.CharField(source="trainee.printed_name", read_only=True)
    trainer = serializers.CharField(source="trainer.username", read_only=True)
    site = serializers.CharField(source="site.code", read_only=True)
    qualification = serializers.CharField(source="qualification.code", read_only=True, allow_null=True)
    masterfile_version = serializers.SerializerMethodField()
    signatures = serializers.SerializerMethodField()

    class Meta:
        model = TrainingRecord
        fields = ["id", "trainee", "trainee_printed_name", "trainer", "site", "kind", "title", "qualification",
                  "masterfile_version", "steps", "score", "pass_mark", "passed", "trained_on", "notes", "status",
                  "created_at", "completed_at", "signatures"]

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_masterfile_version(self, obj: TrainingRecord) -> dict[str, Any] | None:
        v = obj.masterfile_version
        return None if v is None else {"id": v.pk, "product": v.product.code, "number": v.number}

    @extend_schema_field(RecordSignatureSerializer(many=True))
    def get_signatures(self, obj: TrainingRecord) -> list[dict[str, Any]]:
        prefetched: dict[str, list[Signature]] | None = self.context.get("signatures")
        out = []
        if prefetched is None:  # one record: the ledger's own check
            checked = [(s, *signature_status(s)) for s in signatures_for(obj)]
        else:  # a page of records: the same check, against the record already in hand
            current = content_hash(obj.signed_content())
            checked = [(s, s.record_hash == current, "" if s.record_hash == current
                        else "the record changed after it was signed") for s in prefetched.get(str(obj.pk), [])]
        for s, valid, reason in checked:
            out.append({"signer_username": s.signer_username, "signer_printed_name": s.signer_printed_name,
                        "meaning": s.meaning, "signed_at": s.signed_at, "record_hash": s.record_hash,
                        "valid": valid, "invalid_reason": reason})
        return RecordSignatureSerializer(out, many=True).data  # type: ignore[return-value]


class RecordList(generics.ListAPIView[TrainingRecord]):
    """Training records the caller may see, newest first, with the records page's filters (``q``,
    ``trainee``, ``site``, ``kind``, ``status``, ``passed``, training dates, ``sort``)."""

    required_perm = Perm.TRAINING_VIEW
    serializer_class = RecordSerializer
    filterset_class = RecordFilter

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("many") and args:  # the signatures of the whole page in one query
            records = list(args[0])
            signatures: dict[str, list[Signature]] = {}
            for s in Signature.objects.filter(record_type=TrainingRecord._meta.label,
                                              record_id__in=[str(r.pk) for r in records]).order_by("id"):
                signatures.setdefault(s.record_id, []).append(s)
            kwargs["context"] = {**self.get_serializer_context(), "signatures": signatures}
            return self.get_serializer_class()(records, *args[1:], **kwargs)  # type: ignore[arg-type]
        return super().get_serializer(*args, **kwargs)

    def get_queryset(self) -> Any:
        return selectors.records_visible(self.request.user)


class RecordDetail(generics.RetrieveAPIView[TrainingRecord]):
    """One training record with its signatures (trainer: verified; trainee: performed)."""

    required_perm = Perm.TRAINING_VIEW
    serializer_class = RecordSerializer

    def get_queryset(self) -> Any:
        return selectors.records_visible(self.request.user)


def _at(value: str | None, field: str = "at") -> dt.datetime | None:
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise serializers.ValidationError({field: f"{value!r} is not an ISO 8601 date and time, "
                                                  "e.g. 2026-03-01T13:05:00Z."}) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    if not dt.datetime(1970, 1, 1, tzinfo=dt.UTC) <= when <= dt.datetime(9000, 1, 1, tzinfo=dt.UTC):
        raise serializers.ValidationError({field: "Give a moment between 1970 and 9000."})
    return when


class MatrixQuery(serializers.Serializer[Any]):
    site = serializers.CharField(required=False, max_length=8, help_text="Site code; omit for every site you see.")
    at = serializers.CharField(required=False, max_length=40, help_text="ISO 8601 moment (UTC if no zone).")


class Matrix(APIView):
    """The training matrix: people × qualifications with each cell's state (valid, expiring within
    30 days, expired, revoked, missing) and its expiry."""

    required_perm = Perm.TRAINING_VIEW

    @extend_schema(parameters=[MatrixQuery], responses={200: dict})
    def get(self, request: Request) -> Response:
        query = MatrixQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        site = None
        code = query.validated_data.get("site")
        if code:
            site = selectors.sites_for_training(request.user).filter(code=code).first()
            if site is None:
                raise serializers.ValidationError({"site": f"No site {code!r} among those you may see."})
        table = selectors.training_matrix(request.user, site=site, at=_at(query.validated_data.get("at")))
        return Response({
            "at": table.at,
            "site": site.code if site else None,
            "qualifications": [{"code": q.code, "name": q.name, "validity_months": q.validity_months}
                               for q in table.qualifications],
            "rows": [
                {"person": row.person.username, "printed_name": row.person.printed_name, "site": row.site.code,
                 "roles": row.roles,
                 "cells": {c.qualification.code: {"state": c.state or "not_required", "required": c.required,
                                                  "valid_until": c.valid_until, "text": c.text}
                           for c in row.cells}}
                for row in table.rows
            ],
        })


class GateQuery(serializers.Serializer[Any]):
    person = serializers.CharField(max_length=150, help_text="User id (username) or numeric id of the person.")
    step = serializers.CharField(max_length=64, help_text="Step id in the master-file version.")
    site = serializers.CharField(max_length=8, help_text="Site code.")
    version = serializers.IntegerField(min_value=1, max_value=2**62, help_text="Master-file version id.")
    at = serializers.CharField(required=False, max_length=40, help_text="ISO 8601 moment; default now.")
    verifying = serializers.BooleanField(required=False, default=False,
                                         help_text="Ask for the verifying second person.")


class GateAnswer(serializers.Serializer[Any]):
    allowed = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.CharField())
    at = ApiDateTimeField()
    until = ApiDateTimeField(allow_null=True)


class Gate(APIView):
    """May this person perform (or verify) this step of this master-file version at this site now
    (or at ``at``)? ``allowed`` with the ``reasons`` it is not, each naming what is missing.

    Asked without any parameter, it answers with what to ask (so that a client, or the generated
    permission test, can reach it); a question with missing or wrong parameters is a 400 naming them.
    """

    required_perm = Perm.TRAINING_VIEW

    @extend_schema(parameters=[GateQuery], responses={200: GateAnswer})
    def get(self, request: Request) -> Response:
        if not request.query_params:
            return Response({
                "detail": "Ask the gate with ?person=&step=&site=&version= (and optionally at=, verifying=).",
                "parameters": {name: str(f.help_text) for name, f in GateQuery().fields.items()},
            })
        query = GateQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        people = selectors.people_visible(request.user)
        ident = data["person"].strip()
        person = (people.filter(pk=int(ident)).first() if ident.isdigit() and len(ident) < 19 else None) \
            or people.filter(username=ident).first()
        if person is None:
            raise serializers.ValidationError({"person": f"No person {ident!r} among those you may see."})
        site = selectors.sites_for_training(request.user).filter(code=data["site"]).first()
        if site is None:
            raise serializers.ValidationError({"site": f"No site {data['site']!r} among those you may see."})
        version = versions_visible(request.user).filter(pk=data["version"]).first()
        if version is None:
            raise serializers.ValidationError(
                {"version": f"No master-file version {data['version']} among those you may see."})
        decision = step_gate(person=person, version=version, step_id=data["step"], site=site,
                             at=_at(data.get("at")), verifying=data["verifying"])
        return Response(GateAnswer({"allowed": decision.allowed, "reasons": decision.reasons,
                                    "at": decision.at, "until": decision.until}).data)


urlpatterns = [
    path("training/qualifications/", QualificationList.as_view(), name="api-training-qualifications"),
    path("training/records/", RecordList.as_view(), name="api-training-records"),
    path("training/records/<int:pk>/", RecordDetail.as_view(), name="api-training-record"),
    path("training/matrix/", Matrix.as_view(), name="api-training-matrix"),
    path("training/gate/", Gate.as_view(), name="api-training-gate"),
]
