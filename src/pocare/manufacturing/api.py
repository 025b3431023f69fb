"""The batch record over the API: batches with their steps, values and QC results; recording and
verifying steps and entering QC results, each signed (machine clients give user id and password
every time: a token is never a continuous session, P11-200)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import Http404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pocare.accounts.models import User
from pocare.accounts.roles import Perm
from pocare.core.fields import ApiDateTimeField
from pocare.ledger.signing import credentials_from_api
from pocare.manufacturing import device_api, selectors, services
from pocare.manufacturing.filters import BatchFilter
from pocare.manufacturing.models import FEFO_REASON_MAX, Batch, BatchStatus, QcResult, StepExecution, StepValue


class StepValueSerializer(serializers.ModelSerializer[StepValue]):
    entered_by = serializers.CharField(source="entered_by.username", read_only=True)
    deviation = serializers.CharField(source="deviation.reference", read_only=True, default=None)
    value = serializers.JSONField(read_only=True)

    class Meta:
        model = StepValue
        fields = ["id", "parameter_id", "value", "unit", "in_range", "critical", "deviation", "entered_by",
                  "entered_at", "corrects", "correction_reason"]


class StepSerializer(serializers.ModelSerializer[StepExecution]):
    status = serializers.CharField(read_only=True)
    performed_by = serializers.CharField(source="performed_by.username", read_only=True, default=None)
    verified_by = serializers.CharField(source="verified_by.username", read_only=True, default=None)
    values = StepValueSerializer(many=True, read_only=True)

    class Meta:
        model = StepExecution
        fields = ["position", "step_id", "unit_operation", "status", "started_at", "performed_by", "performed_at",
                  "verified_by", "verified_at", "skip_reason", "values"]


class QcResultSerializer(serializers.ModelSerializer[QcResult]):
    entered_by = serializers.CharField(source="entered_by.username", read_only=True)
    deviation = serializers.CharField(source="deviation.reference", read_only=True, default=None)

    class Meta:
        model = QcResult
        fields = ["id", "attribute_id", "value_number", "value_text", "unit", "conforms", "method", "tested_at",
                  "entered_by", "entered_at", "deviation", "corrects", "correction_reason"]


class BatchSerializer(serializers.ModelSerializer[Batch]):
    site = serializers.CharField(source="site.code", read_only=True)
    unit = serializers.CharField(source="unit.serial", read_only=True)
    coi = serializers.CharField(source="order.coi", read_only=True)
    din = serializers.CharField(source="collection.din", read_only=True)
    version = serializers.IntegerField(source="masterfile_version.number", read_only=True)
    product = serializers.CharField(source="masterfile_version.product.code", read_only=True)
    status = serializers.CharField(read_only=True, help_text=f"One of: {', '.join(BatchStatus.values)}.")

    class Meta:
        model = Batch
        fields = ["reference", "site", "unit", "coi", "din", "product", "version", "status", "origin",
                  "started_at", "ended_at", "end_reason"]


class BatchDetailSerializer(BatchSerializer):
    steps = StepSerializer(many=True, read_only=True)
    qc_results = QcResultSerializer(many=True, read_only=True)
    next_step = serializers.SerializerMethodField()

    class Meta(BatchSerializer.Meta):
        fields = [*BatchSerializer.Meta.fields, "next_step", "steps", "qc_results"]

    def get_next_step(self, batch: Batch) -> str | None:
        upcoming = services.next_step(batch) if batch.status == BatchStatus.IN_PROGRESS else None
        return upcoming[1]["id"] if upcoming else None


class BatchList(generics.ListAPIView[Batch]):
    """Batches of the sites the caller may see, filtered like the batches page (``q``, ``site``,
    ``status``, ``product``, ``started_from``/``started_until``, ``sort``)."""

    required_perm = Perm.BATCH_VIEW
    serializer_class = BatchSerializer
    filterset_class = BatchFilter

    def get_queryset(self) -> Any:
        return selectors.batches_visible(self.request.user)


class BatchDetail(generics.RetrieveAPIView[Batch]):
    required_perm = Perm.BATCH_VIEW
    serializer_class = BatchDetailSerializer
    lookup_field = "reference"

    def get_queryset(self) -> Any:
        return selectors.batches_visible(self.request.user).prefetch_related(
            "steps__values__entered_by", "steps__values__deviation", "steps__performed_by", "steps__verified_by",
            "qc_results__entered_by", "qc_results__deviation")


class Credentials(serializers.Serializer[Any]):
    username = serializers.CharField(max_length=150, help_text="Your user id (always needed with a token).")
    password = serializers.CharField(max_length=256, write_only=True, style={"input_type": "password"})


class StepRecord(Credentials):
    values = serializers.DictField(child=serializers.JSONField(), help_text="parameter id → value")
    units = serializers.DictField(child=serializers.CharField(max_length=20), required=False,
                                  help_text="parameter id → unit, checked against the master file")
    materials = serializers.DictField(child=serializers.CharField(max_length=60), required=False,
                                      help_text="material code → lot number")
    fefo_reasons = serializers.DictField(
        child=serializers.CharField(max_length=FEFO_REASON_MAX), required=False,
        help_text="material code → why the lot used is not the one that expires first (first expiry, first out); "
                  "needed only for such a lot")
    notes = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    deviation = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="",
                                      help_text="Needed when a critical value is out of range or a critical step is "
                                                "outside its time window: what happened.")


class StepVerify(Credentials):
    comment = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class QcRecord(Credentials):
    attribute = serializers.CharField(max_length=64)
    value = serializers.CharField(max_length=100)
    unit = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    tested_at = ApiDateTimeField(required=False, allow_null=True, default=None)


def _batch(request: Request, reference: str) -> Batch:
    try:
        return selectors.batch_for(request.user, reference)
    except Batch.DoesNotExist:
        raise Http404("No such batch.") from None


class StepRecordView(APIView):
    """Record the next step's values and materials, signed (performed). 201 with the step; 400
    naming each refused field (``values.<id>``, ``materials.<code>``, ``step``); 403 when signing
    is refused."""

    required_perm = Perm.BATCH_VIEW
    write_perm = Perm.BATCH_EXECUTE

    @extend_schema(request=StepRecord, responses={201: StepSerializer})
    def post(self, request: Request, reference: str, step_id: str) -> Response:
        batch = _batch(request, reference)
        data = StepRecord(data=request.data)
        data.is_valid(raise_exception=True)
        assert isinstance(request.user, User)
        d = data.validated_data
        reasons = d.get("fefo_reasons") or {}
        materials = {code: {"lot": lot, "fefo_reason": reasons[code]} if reasons.get(code) else lot
                     for code, lot in (d.get("materials") or {}).items()}
        if stray := sorted(reasons.keys() - materials.keys()):
            raise ValidationError({f"fefo_reasons.{code}": "A reason for a material with no lot under materials."
                                   for code in stray})
        outcome = services.step_record(actor=request.user, batch=batch, step_id=step_id, values=d["values"],
                                       units=d.get("units"), materials=materials, notes=d["notes"],
                                       deviation=d["deviation"], credentials=credentials_from_api(request, d))
        return Response({**StepSerializer(outcome.step).data,
                         "deviations": [dev.reference for dev in outcome.deviations]}, status=status.HTTP_201_CREATED)


class StepVerifyView(APIView):
    """Second-person verification of a recorded step, signed (verified)."""

    required_perm = Perm.BATCH_VIEW
    write_perm = Perm.BATCH_EXECUTE

    @extend_schema(request=StepVerify, responses={200: StepSerializer})
    def post(self, request: Request, reference: str, step_id: str) -> Response:
        batch = _batch(request, reference)
        data = StepVerify(data=request.data)
        data.is_valid(raise_exception=True)
        assert isinstance(request.user, User)
        step = services.step_verify(actor=request.user, batch=batch, step_id=step_id,
                                    comment=data.validated_data["comment"],
                                    credentials=credentials_from_api(request, data.validated_data))
        return Response(StepSerializer(step).data)


class QcRecordView(APIView):
    """Enter a QC result, evaluated against the specification and signed (performed)."""

    required_perm = Perm.BATCH_VIEW
    write_perm = Perm.QC_RECORD

    @extend_schema(request=QcRecord, responses={201: QcResultSerializer})
    def post(self, request: Request, reference: str) -> Response:
        batch = _batch(request, reference)
        data = QcRecord(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        assert isinstance(request.user, User)
        result = services.qc_result_record(actor=request.user, batch=batch, attribute_id=d["attribute"],
                                           value=d["value"], unit=d["unit"] or None, tested_at=d["tested_at"],
                                           credentials=credentials_from_api(request, d))
        return Response(QcResultSerializer(result).data, status=status.HTTP_201_CREATED)


urlpatterns: list[Any] = [
    path("batches/", BatchList.as_view(), name="api-batches"),
    path("batches/<str:reference>/", BatchDetail.as_view(), name="api-batch"),
    path("batches/<str:reference>/steps/<str:step_id>/record/", StepRecordView.as_view(), name="api-step-record"),
    path("batches/<str:reference>/steps/<str:step_id>/verify/", StepVerifyView.as_view(), name="api-step-verify"),
    path("batches/<str:reference>/qc/", QcRecordView.as_view(), name="api-qc-record"),
    *device_api.urlpatterns,
]
