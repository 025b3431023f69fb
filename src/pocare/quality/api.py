"""The quality API: deviations (list, detail), classifying one, closing one (signed: machine clients
give user id and password every time, P11-200), and quality signals (list, resolve)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import Http404
from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pocare.accounts.models import User
from pocare.accounts.roles import Perm
from pocare.ledger.signing import credentials_from_api
from pocare.masterfile.selectors import change_requests_visible
from pocare.quality import risk, selectors, services
from pocare.quality.filters import DeviationFilter
from pocare.quality.models import (
    CapaAction,
    Deviation,
    DeviationClassification,
    QualitySignal,
    SignalOutcome,
    SignalStatus,
)


class ClassificationSerializer(serializers.ModelSerializer[DeviationClassification]):
    classified_by = serializers.CharField(source="classified_by.username", read_only=True)

    class Meta:
        model = DeviationClassification
        fields = ["severity", "occurrence", "detectability", "result", "rationale", "classified_by", "classified_at"]


class CapaSerializer(serializers.ModelSerializer[CapaAction]):
    owner = serializers.CharField(source="owner.username", read_only=True)
    change_request = serializers.CharField(source="change_request.reference", read_only=True, default=None)

    class Meta:
        model = CapaAction
        fields = ["id", "kind", "description", "owner", "due_on", "change_request", "done_at", "done_note",
                  "effectiveness_due_on", "effective", "effectiveness_note"]


class DeviationSerializer(serializers.ModelSerializer[Deviation]):
    site = serializers.CharField(source="site.code", read_only=True)
    batch = serializers.CharField(source="batch.reference", read_only=True, default=None)
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = Deviation
        fields = ["reference", "site", "kind", "status", "classification", "title", "batch", "step_id",
                  "opened_at", "due_at", "overdue", "impact", "closed_at"]

    def get_overdue(self, deviation: Deviation) -> bool:
        return selectors.is_overdue(deviation, timezone.now())


class DeviationDetailSerializer(DeviationSerializer):
    classifications = ClassificationSerializer(many=True, read_only=True)
    capa_actions = CapaSerializer(many=True, read_only=True)
    investigation = serializers.SerializerMethodField()
    source_url = serializers.SerializerMethodField()

    class Meta(DeviationSerializer.Meta):
        fields = [*DeviationSerializer.Meta.fields, "description", "source_type", "source_id", "source_url",
                  "impact_rationale", "closure_summary", "classifications", "investigation", "capa_actions"]

    def get_investigation(self, deviation: Deviation) -> dict[str, Any] | None:
        i = deviation.investigation
        return None if i is None else {"findings": i.findings, "root_cause": i.root_cause,
                                       "root_cause_category": i.root_cause_category,
                                       "completed_by": i.completed_by.username, "completed_at": i.completed_at}

    def get_source_url(self, deviation: Deviation) -> str | None:
        link = selectors.source_link(deviation)
        return link[1] if link else None


def _choice(name: str, values: list[str]) -> str:
    return f"{name}: one of {', '.join(values)}."


class DeviationList(generics.ListAPIView[Deviation]):
    """Deviations the caller may see, filtered like the deviations page (``q``, ``site``, ``status``,
    ``classification``, ``kind``, ``overdue=true|false``, ``opened_from``/``opened_until``, ``sort``).
    An unknown value is a 400 naming the parameter."""

    required_perm = Perm.DEVIATION_VIEW
    serializer_class = DeviationSerializer
    filterset_class = DeviationFilter

    def get_queryset(self) -> Any:
        return selectors.deviations_visible(self.request.user)


class DeviationDetail(generics.RetrieveAPIView[Deviation]):
    required_perm = Perm.DEVIATION_VIEW
    serializer_class = DeviationDetailSerializer
    lookup_field = "reference"

    def get_queryset(self) -> Any:
        return selectors.deviations_visible(self.request.user).prefetch_related(
            "classifications__classified_by", "capa_actions__owner", "capa_actions__change_request",
            "investigations__completed_by")


def _deviation(request: Request, reference: str) -> Deviation:
    try:
        return selectors.deviation_for(request.user, reference)
    except Deviation.DoesNotExist:
        raise Http404("No such deviation.") from None


class ClassifyInput(serializers.Serializer[Any]):
    severity = serializers.IntegerField(min_value=risk.LOW, max_value=risk.HIGH, help_text=str(risk.SEVERITY))
    occurrence = serializers.IntegerField(min_value=risk.LOW, max_value=risk.HIGH, help_text=str(risk.OCCURRENCE))
    detectability = serializers.IntegerField(min_value=risk.LOW, max_value=risk.HIGH,
                                             help_text=str(risk.DETECTABILITY))
    rationale = serializers.CharField(max_length=4000)


class DeviationClassify(APIView):
    """Score a deviation (ICH Q9) and classify it; the escalation rule of its class applies. 201 with
    the deviation; 400 naming the refused field."""

    required_perm = Perm.DEVIATION_VIEW
    write_perm = Perm.DEVIATION_INVESTIGATE

    @extend_schema(request=ClassifyInput, responses={201: DeviationDetailSerializer})
    def post(self, request: Request, reference: str) -> Response:
        deviation = _deviation(request, reference)
        data = ClassifyInput(data=request.data)
        data.is_valid(raise_exception=True)
        assert isinstance(request.user, User)
        services.deviation_classify(actor=request.user, deviation=deviation, **data.validated_data)
        deviation.refresh_from_db()
        return Response(DeviationDetailSerializer(deviation).data, status=status.HTTP_201_CREATED)


class CloseInput(serializers.Serializer[Any]):
    summary = serializers.CharField(max_length=8000)
    username = serializers.CharField(max_length=150, help_text="Your user id (always needed with a token).")
    password = serializers.CharField(max_length=256, write_only=True, style={"input_type": "password"})


class DeviationCloseView(APIView):
    """Close a deviation, signed (approved) by Control Site QA. 400 lists what still stands in the
    way (``deviation``); 403 when signing is refused."""

    required_perm = Perm.DEVIATION_VIEW
    write_perm = Perm.DEVIATION_CLOSE

    @extend_schema(request=CloseInput, responses={200: DeviationDetailSerializer})
    def post(self, request: Request, reference: str) -> Response:
        deviation = _deviation(request, reference)
        data = CloseInput(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        assert isinstance(request.user, User)
        services.deviation_close(actor=request.user, deviation=deviation, summary=d["summary"],
                                 credentials=credentials_from_api(request, d))
        deviation.refresh_from_db()
        return Response(DeviationDetailSerializer(deviation).data)


class SignalSerializer(serializers.ModelSerializer[QualitySignal]):
    site = serializers.CharField(source="site.code", read_only=True)
    product = serializers.CharField(source="product.code", read_only=True)
    deviation = serializers.CharField(source="deviation.reference", read_only=True, default=None)
    change_request = serializers.CharField(source="change_request.reference", read_only=True, default=None)
    resolved_by = serializers.CharField(source="resolved_by.username", read_only=True, default=None)

    class Meta:
        model = QualitySignal
        fields = ["id", "site", "product", "attribute_id", "rule", "summary", "evidence", "fingerprint", "status",
                  "raised_at", "outcome", "deviation", "change_request", "decision", "resolved_by", "resolved_at"]


class SignalList(generics.ListAPIView[QualitySignal]):
    """Quality signals the caller may see; ``?status=open`` narrows."""

    required_perm = Perm.DEVIATION_VIEW
    serializer_class = SignalSerializer

    def get_queryset(self) -> Any:
        qs = selectors.signals_visible(self.request.user).order_by("-raised_at", "-pk")
        state = self.request.query_params.get("status")
        if state is not None:
            if state not in SignalStatus.values:
                raise ApiValidationError({"status": [_choice("status", SignalStatus.values)]})
            qs = qs.filter(status=state)
        return qs


class ResolveInput(serializers.Serializer[Any]):
    outcome = serializers.ChoiceField(choices=SignalOutcome.choices)
    deviation = serializers.CharField(max_length=24, required=False, allow_blank=True, default="",
                                      help_text="Deviation reference, for outcome 'deviation'.")
    change_request = serializers.CharField(max_length=20, required=False, allow_blank=True, default="",
                                           help_text="Change request reference, for outcome 'change_request'.")
    decision = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")
    reason = serializers.CharField(max_length=500)
    username = serializers.CharField(max_length=150, help_text="Your user id (always needed with a token).")
    password = serializers.CharField(max_length=256, write_only=True, style={"input_type": "password"})


class SignalResolveView(APIView):
    """Resolve a quality signal (Control Site QA), signed (meaning: reviewed): link it to an open
    deviation of its site, a change request or a documented decision."""

    required_perm = Perm.DEVIATION_VIEW
    write_perm = Perm.DEVIATION_CLOSE

    @extend_schema(request=ResolveInput, responses={200: SignalSerializer})
    def post(self, request: Request, pk: int) -> Response:

        signal = selectors.signals_visible(request.user).filter(pk=pk).first()
        if signal is None:
            raise Http404("No such signal.")
        data = ResolveInput(data=request.data)
        data.is_valid(raise_exception=True)
        d = data.validated_data
        deviation = selectors.deviations_visible(request.user).filter(reference=d["deviation"]).first() \
            if d["deviation"] else None
        if d["deviation"] and deviation is None:
            raise ValidationError({"deviation": f"No deviation {d['deviation']!r} that you may see."})
        change = change_requests_visible(request.user).filter(reference=d["change_request"]).first() \
            if d["change_request"] else None
        if d["change_request"] and change is None:
            raise ValidationError({"change_request": f"No change request {d['change_request']!r}."})
        assert isinstance(request.user, User)
        services.signal_resolve(actor=request.user, signal=signal, outcome=d["outcome"], deviation=deviation,
                                change_request=change, decision=d["decision"], reason=d["reason"],
                                credentials=credentials_from_api(request, d))
        return Response(SignalSerializer(signal).data)


urlpatterns: list[Any] = [
    path("deviations/", DeviationList.as_view(), name="api-deviations"),
    path("deviations/<str:reference>/", DeviationDetail.as_view(), name="api-deviation"),
    path("deviations/<str:reference>/classify/", DeviationClassify.as_view(), name="api-deviation-classify"),
    path("deviations/<str:reference>/close/", DeviationCloseView.as_view(), name="api-deviation-close"),
    path("signals/", SignalList.as_view(), name="api-signals"),
    path("signals/<int:pk>/resolve/", SignalResolveView.as_view(), name="api-signal-resolve"),
]
