"""Audit trail, signatures and reviews over the API (read; reviews are signed with a password)."""

from __future__ import annotations

import csv
import io
from typing import Any

from django.db import transaction
from django.http import HttpResponse
from django.urls import path, reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pocare.accounts.roles import Perm
from pocare.core.api import Pagination
from pocare.ledger.models import AuditReview, Event, Signature
from pocare.ledger.signing import credentials_from_api
from pocare.ledger.verify import signature_statuses
from pocare.trail import selectors
from pocare.trail.filters import EventFilter, SignatureFilter
from pocare.trail.services import EXPORT_COLUMNS, trail_export, trail_review_sign
from pocare.trail.tasks import trail_verify_request
from pocare.trail.views import TrailPaginator, _counted_chains, _narrowed


class EventSerializer(serializers.ModelSerializer[Event]):
    label = serializers.CharField(read_only=True)  # type: ignore[assignment]
    old_values = serializers.JSONField(source="old", read_only=True)
    new_values = serializers.JSONField(source="new", read_only=True)

    class Meta:
        model = Event
        fields = ["id", "label", "chain", "seq", "occurred_at", "event_type", "actor_username",
                  "actor_printed_name", "object_type", "object_id", "object_repr", "reason",
                  "request_id", "old_values", "new_values", "prev_hash", "hash"]


class SignatureListSerializer(serializers.ListSerializer[Signature]):
    """A page of signatures: their validity is checked for the whole page at once (one query per
    record type, ``ledger.verify.signature_statuses``), not twice a row."""

    def to_representation(self, data: Any) -> Any:
        signatures = list(data.all() if hasattr(data, "all") else data)
        assert isinstance(self.child, SignatureSerializer)
        self.child.statuses |= signature_statuses(signatures)
        return super().to_representation(signatures)


class SignatureSerializer(serializers.ModelSerializer[Signature]):
    valid = serializers.SerializerMethodField()
    invalid_reason = serializers.SerializerMethodField()
    meaning_display = serializers.CharField(source="get_meaning_display", read_only=True)

    class Meta:
        model = Signature
        fields = ["id", "signer_username", "signer_printed_name", "meaning", "meaning_display",
                  "signed_at", "record_type", "record_id", "record_repr", "record_hash", "chain",
                  "valid", "invalid_reason"]
        list_serializer_class = SignatureListSerializer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.statuses: dict[int, tuple[bool, str]] = {}

    def _status(self, obj: Signature) -> tuple[bool, str]:
        if obj.pk not in self.statuses:  # one signature on its own (the detail)
            self.statuses |= signature_statuses([obj])
        return self.statuses[obj.pk]

    def get_valid(self, obj: Signature) -> bool:
        return self._status(obj)[0]

    def get_invalid_reason(self, obj: Signature) -> str:
        return self._status(obj)[1]


class EventPagination(Pagination):
    """The trail's pages over the API, counted and read as the web browser's (``TrailPaginator``):
    unfiltered, the count is the sum of the chains' heads, not a COUNT over millions of events;
    filtered, counting stops at ``COUNT_CAP`` and few matches are read through the filter's index."""

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        filterset = EventFilter(request.query_params, queryset=queryset)
        valid = filterset.is_valid()  # the filter backend has already refused an invalid filter
        self.trail = TrailPaginator(queryset, 1, chains=_counted_chains(request, filterset) if valid else None,
                                    filtered=_narrowed(filterset) if valid else True)
        return super().paginate_queryset(self.trail.reading_order(), request, view)

    def get_count(self, queryset: Any) -> int:
        return int(self.trail.count)


class EventList(generics.ListAPIView[Event]):
    """The audit trail, newest first, filtered like the web browser."""

    required_perm = Perm.LEDGER_VIEW
    serializer_class = EventSerializer
    filterset_class = EventFilter
    pagination_class = EventPagination

    def get_queryset(self) -> Any:
        return selectors.events_visible(self.request.user).order_by("-id")


class EventDetail(generics.RetrieveAPIView[Event]):
    required_perm = Perm.LEDGER_VIEW
    serializer_class = EventSerializer

    def get_queryset(self) -> Any:
        return selectors.events_visible(self.request.user)


class ExportQuery(serializers.Serializer[Any]):
    format = serializers.ChoiceField(choices=["json", "csv"], default="json")


class EventExport(APIView):
    """Export the filtered trail as JSON or CSV; the export is recorded in the ledger, so it is a
    POST (GET never writes). The filters and ``format`` go in the query string."""

    required_perm = Perm.LEDGER_EXPORT
    recorded_read = True  # inspectors export too
    renderer_classes = [JSONRenderer]

    @extend_schema(
        request=None,
        parameters=[ExportQuery],
        responses={200: EventSerializer(many=True)},
    )
    def post(self, request: Request) -> Response:
        query = ExportQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        filterset = EventFilter(request.query_params, queryset=selectors.events_visible(request.user))
        if not filterset.is_valid():
            return Response(filterset.errors, status=status.HTTP_400_BAD_REQUEST)
        fmt = query.validated_data["format"]
        rows, event = trail_export(actor=request.user, events=filterset.qs.order_by("chain", "seq"),  # type: ignore[arg-type]
                                   fmt=fmt, filters={k: v for k, v in request.query_params.items() if v})
        if fmt == "csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

            return HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")  # type: ignore[return-value]
        return Response({"export_event": event.label, "events": rows})


class SignatureList(generics.ListAPIView[Signature]):
    """Electronic signatures with their current validity (false if the record changed); ``q``,
    ``chain``, ``meaning``, ``record_type``, ``record_id``, ``signer``, ``signed_from``/``signed_until``
    and ``sort`` narrow (pocare.core.listing)."""

    required_perm = Perm.SIGNATURES_VIEW
    serializer_class = SignatureSerializer
    filterset_class = SignatureFilter

    def get_queryset(self) -> Any:
        return selectors.signatures_visible(self.request.user)


class SignatureDetail(generics.RetrieveAPIView[Signature]):
    required_perm = Perm.SIGNATURES_VIEW
    serializer_class = SignatureSerializer

    def get_queryset(self) -> Any:
        return selectors.signatures_visible(self.request.user)


class ReviewSerializer(serializers.ModelSerializer[AuditReview]):
    reviewer = serializers.CharField(source="reviewer.printed_name", read_only=True)

    class Meta:
        model = AuditReview
        fields = ["id", "chain", "from_seq", "to_seq", "to_hash", "lanes", "comment", "reviewer", "created_at"]
        read_only_fields = ["from_seq", "to_seq", "to_hash", "lanes", "created_at"]


class ReviewSign(serializers.Serializer[Any]):
    chain = serializers.CharField(max_length=16)
    comment = serializers.CharField(max_length=4000)
    username = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    password = serializers.CharField(max_length=256, write_only=True, trim_whitespace=False)


class ReviewList(generics.ListAPIView[AuditReview]):
    """Signed audit-trail reviews; POST signs the review of the chain's unreviewed events."""

    required_perm = Perm.LEDGER_VIEW
    write_perm = Perm.LEDGER_REVIEW
    serializer_class = ReviewSerializer

    def get_queryset(self) -> Any:
        return selectors.reviews_visible(self.request.user)

    @extend_schema(request=ReviewSign, responses={201: ReviewSerializer})
    def post(self, request: Request) -> Response:
        data = ReviewSign(data=request.data)
        data.is_valid(raise_exception=True)
        review = trail_review_sign(
            actor=request.user,  # type: ignore[arg-type]
            chain=data.validated_data["chain"],
            comment=data.validated_data["comment"],
            credentials=credentials_from_api(request, data.validated_data),
        )
        return Response(ReviewSerializer(review).data, status=status.HTTP_201_CREATED)


class Verify(APIView):
    """Verify the hash chains and signatures the caller may see: a POST queues the check as a job of
    the caller's (202, with the job's id); ``GET /api/jobs/<id>/`` then gives its state and, when done,
    the report as its ``result`` (ok, events, chains, invalid_signatures). Recorded, so a POST."""

    required_perm = Perm.LEDGER_VERIFY
    recorded_read = True  # inspectors verify too

    @extend_schema(request=None, responses={202: OpenApiResponse(OpenApiTypes.OBJECT, description="The job queued.")})
    def post(self, request: Request) -> Response:
        with transaction.atomic():  # the job is queued in this request's transaction
            job = trail_verify_request(actor=request.user)  # type: ignore[arg-type]
        # As the queue's own API answers a queued job (jobs.api.accepted; the queue is a sibling app).
        url = reverse("api-job", kwargs={"pk": job.pk})
        return Response({"job": job.pk, "status": job.status, "url": url,
                         "page": reverse("jobs:job", kwargs={"pk": job.pk})},
                        status=status.HTTP_202_ACCEPTED, headers={"Location": url})


urlpatterns = [
    path("audit/events/", EventList.as_view(), name="api-events"),
    path("audit/events/<int:pk>/", EventDetail.as_view(), name="api-event"),
    path("audit/export/", EventExport.as_view(), name="api-export"),
    path("audit/verify/", Verify.as_view(), name="api-verify"),
    path("audit/reviews/", ReviewList.as_view(), name="api-reviews"),
    path("signatures/", SignatureList.as_view(), name="api-signatures"),
    path("signatures/<int:pk>/", SignatureDetail.as_view(), name="api-signature"),
]
