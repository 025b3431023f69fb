"""Release over the API: the checklist of a batch, the release queue, the site's QC review (stage 1)
and the QP's certification or rejection (stage 2), each signed with user id and password (a token
is never a continuous session, P11-200)."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.urls import path
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pocare.accounts.models import User
from pocare.accounts.roles import Perm
from pocare.core.fields import ApiDateTimeField
from pocare.ledger.signing import credentials_from_api
from pocare.manufacturing.models import Batch
from pocare.release import bundle_views, selectors, services
from pocare.release.checklist import release_checklist
from pocare.release.filters import QueueFilter
from pocare.release.models import Certification, QcReview


class LineSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    state = serializers.ChoiceField(choices=["pass", "fail", "pending", "not_applicable"])
    detail = serializers.CharField()
    evidence = serializers.CharField(help_text="URL of the record that is the evidence.")
    findings = serializers.ListField(child=serializers.CharField())


class ChecklistSerializer(serializers.Serializer[Any]):
    batch = serializers.CharField()
    stage = serializers.CharField()
    releasable = serializers.BooleanField(help_text="Every line passes (pending only for results after release).")
    hash = serializers.CharField(help_text="SHA-256 of the checklist snapshot.")
    lines = LineSerializer(many=True)
    changed = serializers.ListField(child=serializers.DictField(), help_text="Data changed after first entry (A11-8).")


class QueueRowSerializer(serializers.Serializer[Any]):
    batch = serializers.CharField()
    site = serializers.CharField()
    completed_at = ApiDateTimeField(allow_null=True)
    stage = serializers.CharField()
    blocking = LineSerializer(many=True)


class DecisionSerializer(serializers.ModelSerializer[Certification]):
    batch = serializers.CharField(source="batch.reference", read_only=True)
    qp = serializers.CharField(source="qp.username", read_only=True)

    class Meta:
        model = Certification
        fields = ["batch", "decision", "reason", "checklist_hash", "oos_release", "qp", "decided_at"]


class QcReviewOutSerializer(serializers.ModelSerializer[QcReview]):
    batch = serializers.CharField(source="batch.reference", read_only=True)
    reviewer = serializers.CharField(source="reviewer.username", read_only=True)

    class Meta:
        model = QcReview
        fields = ["batch", "comment", "checklist_hash", "reviewer", "reviewed_at"]


class Credentials(serializers.Serializer[Any]):
    username = serializers.CharField(max_length=150, help_text="Your user id (always needed with a token).")
    password = serializers.CharField(max_length=256, write_only=True, style={"input_type": "password"})


class ReasonIn(Credentials):
    reason = serializers.CharField(max_length=4000)


class CommentIn(Credentials):
    comment = serializers.CharField(max_length=4000)


def _batch(request: Request, reference: str, perm: Perm = Perm.RELEASE_VIEW) -> Batch:
    try:
        return selectors.release_batch_for(request.user, reference, perm)
    except Batch.DoesNotExist:
        raise Http404("No such batch.") from None


class ChecklistView(APIView):
    """The release checklist of a batch, evaluated now."""

    required_perm = Perm.RELEASE_VIEW

    @extend_schema(responses={200: ChecklistSerializer})
    def get(self, request: Request, reference: str) -> Response:
        batch = _batch(request, reference)
        checklist = release_checklist(batch)
        return Response({"batch": batch.reference, "stage": selectors.stage(batch), "releasable": checklist.all_pass,
                         "hash": checklist.snapshot_hash(), "lines": [ln.as_dict() for ln in checklist.lines],
                         "changed": [c.as_dict() for c in checklist.changed]})


class QueueView(APIView):
    """Completed batches not yet decided, oldest first, with their blocking lines (the first 200);
    filtered like the queue page (``q``, ``site``, ``product``, ``completed_from``/``completed_until``,
    ``sort``), a bad filter a 400 naming it."""

    required_perm = Perm.RELEASE_VIEW
    filterset_class = QueueFilter

    @extend_schema(responses={200: QueueRowSerializer(many=True)})
    def get(self, request: Request) -> Response:
        batches = DjangoFilterBackend().filter_queryset(request, selectors.queue_batches(request.user), self)
        return Response([{"batch": r.batch.reference, "site": r.batch.site.code, "completed_at": r.batch.ended_at,
                          "stage": r.stage, "blocking": [ln.as_dict() for ln in r.blocking]}
                         for r in selectors.queue_rows(batches[:200])])


class QcReviewView(APIView):
    """Stage 1: the site's QC analyst signs the QC review (reviewed)."""

    required_perm = Perm.RELEASE_VIEW
    write_perm = Perm.RELEASE_QC_REVIEW

    @extend_schema(request=CommentIn, responses={201: QcReviewOutSerializer})
    def post(self, request: Request, reference: str) -> Response:
        batch = _batch(request, reference, Perm.RELEASE_QC_REVIEW)
        data = CommentIn(data=request.data)
        data.is_valid(raise_exception=True)
        assert isinstance(request.user, User)
        review = services.qc_review_sign(actor=request.user, batch=batch, comment=data.validated_data["comment"],
                                         credentials=credentials_from_api(request, data.validated_data))
        return Response(QcReviewOutSerializer(review).data, status=status.HTTP_201_CREATED)


class _DecisionView(APIView):
    required_perm = Perm.RELEASE_VIEW
    write_perm = Perm.RELEASE_CERTIFY
    service: Any = None

    @extend_schema(request=ReasonIn, responses={201: DecisionSerializer})
    def post(self, request: Request, reference: str) -> Response:
        batch = _batch(request, reference, Perm.RELEASE_CERTIFY)
        data = ReasonIn(data=request.data)
        data.is_valid(raise_exception=True)
        assert isinstance(request.user, User)
        cert = type(self).service(actor=request.user, batch=batch, reason=data.validated_data["reason"],
                                  credentials=credentials_from_api(request, data.validated_data))
        return Response(DecisionSerializer(cert).data, status=status.HTTP_201_CREATED)


class CertifyView(_DecisionView):
    """Stage 2: the QP certifies the batch for release (released). 400 names what blocks it."""

    service = staticmethod(services.batch_certify)


class RejectView(_DecisionView):
    """Stage 2: the QP rejects the batch (rejected)."""

    service = staticmethod(services.batch_reject)


urlpatterns: list[Any] = [
    path("release/queue/", QueueView.as_view(), name="api-release-queue"),
    path("release/batches/<str:reference>/checklist/", ChecklistView.as_view(), name="api-release-checklist"),
    path("release/batches/<str:reference>/qc-review/", QcReviewView.as_view(), name="api-release-qc-review"),
    path("release/batches/<str:reference>/certify/", CertifyView.as_view(), name="api-release-certify"),
    path("release/batches/<str:reference>/reject/", RejectView.as_view(), name="api-release-reject"),
    *bundle_views.bundle_api_urlpatterns,  # the inspector bundle (release/bundle.py)
]
