"""Device data and alarms over the API (included by manufacturing/api.py under /api/).

Automated systems push process values with their own bearer token (P11-10h: the token names the
source) and an ``Idempotency-Key`` header, so that a retried push is stored once. People read the
values and alarms of the batches they may see and acknowledge alarms (A11-ALARM).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pocare.accounts.models import User
from pocare.accounts.roles import Perm
from pocare.core import bounds
from pocare.core.fields import ApiDateTimeField, ApiFloatField
from pocare.core.parsers import BoundedJSONParser
from pocare.manufacturing import devices
from pocare.manufacturing.models import Alarm, Batch, DeviceReading
from pocare.manufacturing.selectors import batches_visible

IDEMPOTENCY_HEADER = "Idempotency-Key"


class PushRow(serializers.Serializer[Any]):
    """One process value (documentation of the row; the service checks each row and names the bad ones)."""

    batch = serializers.CharField(help_text="The batch reference, e.g. MAD-2026-0042.")
    parameter = serializers.CharField(help_text="A monitoring id of the batch's master-file version, e.g. ph.")
    time = ApiDateTimeField(help_text="When the device measured it: ISO 8601 with offset or Z.")
    value = ApiFloatField(help_text="A finite number, in the parameter's unit.")


class PushRequest(serializers.Serializer[Any]):
    rows = PushRow(many=True, help_text=f"1 to {devices.MAX_ROWS} rows.")


class BatchCountSerializer(serializers.Serializer[Any]):
    reference = serializers.CharField()
    readings = serializers.IntegerField()
    out_of_limits = serializers.IntegerField()


class AlarmSerializer(serializers.ModelSerializer[Alarm]):
    batch = serializers.CharField(source="batch.reference", read_only=True)
    acknowledged_by = serializers.CharField(source="acknowledged_by.username", read_only=True, allow_null=True,
                                            default=None)
    deviation = serializers.CharField(source="deviation.reference", read_only=True, allow_null=True, default=None)
    open = serializers.SerializerMethodField(help_text="True until a person acknowledges it.")

    class Meta:
        model = Alarm
        fields = ["id", "batch", "parameter_id", "raised_at", "alarm_min", "alarm_max", "extreme_value",
                  "readings_outside", "open", "acknowledged_by", "acknowledged_at", "acknowledgement", "deviation"]

    def get_open(self, alarm: Alarm) -> bool:
        return alarm.acknowledged_at is None


class PushResultSerializer(serializers.Serializer[Any]):
    push = serializers.IntegerField(source="push.pk")
    idempotency_key = serializers.CharField(source="push.idempotency_key")
    received_at = ApiDateTimeField(source="push.received_at")
    rows = serializers.IntegerField(source="push.rows")
    sha256 = serializers.CharField(source="push.sha256", help_text="Of the rows as received, canonical JSON.")
    created = serializers.BooleanField(help_text="False when this repeats an earlier push with the same key.")
    batches = BatchCountSerializer(many=True)
    alarms_raised = AlarmSerializer(many=True)


_ROW_PROBLEMS = inline_serializer("DevicePushRejected", fields={
    "detail": serializers.CharField(),
    "rows": inline_serializer("DeviceRowProblem", fields={
        "row": serializers.IntegerField(), "field": serializers.CharField(), "problem": serializers.CharField(),
    }, many=True),
    "problems": serializers.IntegerField(help_text="How many problems in all (only the first are listed)."),
})


class DeviceDataPush(APIView):
    """Push process values of batches in progress, in bulk. Every row is checked first; a push with
    any bad row stores nothing and answers 400 with each bad row's number and reason. Send a unique
    ``Idempotency-Key`` header per push: repeating a push with the same key and rows stores nothing
    again and answers 200 with the first push's result; the same key with other rows is a 409."""

    required_perm = Perm.DEVICE_PUSH
    write_perm = Perm.DEVICE_PUSH
    parser_classes = [BoundedJSONParser]

    @extend_schema(
        request=PushRequest,
        parameters=[OpenApiParameter(IDEMPOTENCY_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=True,
                                     description=f"A unique key per push (1 to {devices.MAX_KEY_LENGTH} printable "
                                                 "characters, e.g. a UUID); a retry sends the same key. Keys "
                                                 "are per client: other clients' keys do not collide.")],
        responses={201: PushResultSerializer, 200: OpenApiResponse(PushResultSerializer, "A repeated push."),
                   400: _ROW_PROBLEMS, 409: OpenApiResponse(description="Key used by this client for other rows.")},
    )
    def post(self, request: Request) -> Response:
        key = request.headers.get(IDEMPOTENCY_HEADER, "")
        if not key.strip():
            raise exceptions.ValidationError({IDEMPOTENCY_HEADER: [
                f"Send an {IDEMPOTENCY_HEADER} header: a unique key per push, repeated on a retry."]})
        data = request.data
        if not isinstance(data, dict) or "rows" not in data:
            raise exceptions.ValidationError({"rows": ["Send a JSON object {\"rows\": [{batch, parameter, time, "
                                                       "value}, …]}."]})
        assert isinstance(request.user, User)
        try:
            result = devices.device_data_push(actor=request.user, idempotency_key=key, rows=data["rows"])
        except devices.DevicePushRejected as exc:
            return Response({"detail": "Nothing was stored: correct the rows listed and push again.",
                             "rows": [{"row": p.row, "field": p.field, "problem": p.problem} for p in exc.problems],
                             "problems": exc.total}, status=status.HTTP_400_BAD_REQUEST)
        except devices.IdempotencyConflict as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(PushResultSerializer(result).data,
                        status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class ReadingSerializer(serializers.ModelSerializer[DeviceReading]):
    pushed_by = serializers.CharField(source="push.pushed_by.username", read_only=True,
                                   help_text="The user id of the client that pushed it (P11-10h).")
    push = serializers.CharField(source="push.idempotency_key", read_only=True)

    class Meta:
        model = DeviceReading
        fields = ["id", "parameter_id", "at", "value", "out_of_limits", "pushed_by", "push"]


def _batch(request: Request, reference: str) -> Batch:
    batch: Batch = get_object_or_404(batches_visible(request.user), reference=reference)
    return batch


def _since(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise exceptions.ValidationError({"since": [f"{text[:40]!r} is not an ISO 8601 date and time."]}) from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise exceptions.ValidationError({"since": ["Give the UTC offset (Z or +hh:mm)."]})
    problem = bounds.datetime_problem(when)  # before any comparison in UTC, which would overflow
    if problem:
        raise exceptions.ValidationError({"since": [f"{text[:40]!r}: {problem}."]})
    return when


class BatchDeviceData(generics.ListAPIView[DeviceReading]):
    """The batch's device readings in time order; ``?parameter=ph`` narrows to one parameter,
    ``?since=<ISO 8601>`` to readings after that moment (for polling)."""

    required_perm = Perm.BATCH_VIEW
    serializer_class = ReadingSerializer
    queryset = DeviceReading.objects.none()  # the schema generator's hint; get_queryset scopes

    @extend_schema(parameters=[
        OpenApiParameter("parameter", OpenApiTypes.STR, description="A monitoring id of the batch's version."),
        OpenApiParameter("since", OpenApiTypes.DATETIME, description="Only readings after this moment."),
    ])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        batch = _batch(self.request, self.kwargs["reference"])
        parameter = self.request.query_params.get("parameter") or None
        if parameter is not None:
            allowed = [p.id for p in devices.monitoring_of(batch)]
            if parameter not in allowed:
                raise exceptions.ValidationError({"parameter": [
                    f"{parameter[:40]!r} is not monitored for {batch.reference}; use one of: {', '.join(allowed)}."]})
        return devices.readings_of(self.request.user, batch, parameter=parameter,
                                   since=_since(self.request.query_params.get("since")))


class BatchAlarms(generics.ListAPIView[Alarm]):
    """The batch's device alarms, newest first."""

    required_perm = Perm.BATCH_VIEW
    serializer_class = AlarmSerializer
    queryset = Alarm.objects.none()  # the schema generator's hint; get_queryset scopes

    def get_queryset(self) -> Any:
        return devices.alarms_of(self.request.user, _batch(self.request, self.kwargs["reference"]))


class AcknowledgeRequest(serializers.Serializer[Any]):
    comment = serializers.CharField(max_length=2000, help_text="What you checked or did; kept in the audit trail.")
    raise_deviation = serializers.BooleanField(default=False, help_text="Also open a deviation (kind alarm).")


class AlarmAcknowledge(APIView):
    """Acknowledge a device alarm with a comment (A11-ALARM), once; optionally open a deviation.
    409 when the alarm was already acknowledged."""

    required_perm = Perm.BATCH_VIEW
    write_perm = Perm.ALARM_ACK

    @extend_schema(request=AcknowledgeRequest, responses={200: AlarmSerializer,
                                                          409: OpenApiResponse(description="Already acknowledged.")})
    def post(self, request: Request, pk: int) -> Response:
        alarm = get_object_or_404(devices.alarms_visible(request.user), pk=pk)
        data = AcknowledgeRequest(data=request.data)
        data.is_valid(raise_exception=True)
        assert isinstance(request.user, User)
        try:
            alarm = devices.alarm_acknowledge(actor=request.user, alarm=alarm, **data.validated_data)
        except devices.AlarmAlreadyAcknowledged as exc:
            return Response(exc.message_dict, status=status.HTTP_409_CONFLICT)
        return Response(AlarmSerializer(alarm).data)


urlpatterns = [
    path("device-data/", DeviceDataPush.as_view(), name="api-device-data"),
    path("batches/<str:reference>/device-data/", BatchDeviceData.as_view(), name="api-batch-device-data"),
    path("batches/<str:reference>/alarms/", BatchAlarms.as_view(), name="api-batch-alarms"),
    path("alarms/<int:pk>/acknowledge/", AlarmAcknowledge.as_view(), name="api-alarm-acknowledge"),
]
