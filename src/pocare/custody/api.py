"""The custody API: therapy orders with their chain of identity, hand-off scans, logger uploads;
scoped like the web pages (an order is visible at its manufacturing and treating sites)."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pocare.accounts.models import User
from pocare.accounts.roles import Perm
from pocare.core.fields import ApiFloatField
from pocare.custody import selectors, services
from pocare.custody.filters import OrderFilter
from pocare.custody.models import (
    Collection,
    Handoff,
    HandoffKind,
    OrderStatus,
    Shipment,
    TemperatureUpload,
    TherapyOrder,
)


class CollectionSerializer(serializers.ModelSerializer[Collection]):
    collection_site = serializers.CharField(source="collection_site.code", read_only=True)
    din_printed = serializers.CharField(read_only=True)

    class Meta:
        model = Collection
        fields = ["id", "din", "flags", "check_character", "din_printed", "collection_site", "collection_started_at",
                  "collection_ended_at", "autologous", "volume_ml", "donor_tests", "expires_at", "recorded_at"]


class HandoffSerializer(serializers.ModelSerializer[Handoff]):
    site = serializers.CharField(source="site.code", read_only=True)
    kind = serializers.CharField(read_only=True, help_text=f"One of: {', '.join(HandoffKind.values)}.")
    outcome = serializers.CharField(read_only=True, help_text="completed or blocked.")
    din = serializers.CharField(source="collection.din", read_only=True, default=None)
    deviation = serializers.CharField(source="deviation.reference", read_only=True, default=None)

    class Meta:
        model = Handoff
        fields = ["id", "kind", "outcome", "site", "location", "time_zone", "occurred_at", "performed_by_name",
                  "expected_identifier", "presented_identifier", "din", "deviation", "notes"]


class UploadSerializer(serializers.ModelSerializer[TemperatureUpload]):
    deviation = serializers.CharField(source="deviation.reference", read_only=True, default=None)

    class Meta:
        model = TemperatureUpload
        fields = ["id", "uploaded_at", "source", "readings", "sha256", "excursions", "deviation"]


class ShipmentSerializer(serializers.ModelSerializer[Shipment]):
    uploads = UploadSerializer(many=True, read_only=True)

    class Meta:
        model = Shipment
        fields = ["id", "leg", "logger_id", "min_celsius", "max_celsius", "dispatched_at", "uploads"]


class OrderSerializer(serializers.ModelSerializer[TherapyOrder]):
    site = serializers.CharField(source="site.code", read_only=True)
    treating_site = serializers.CharField(source="treating_site.code", read_only=True)
    product = serializers.CharField(source="product.code", read_only=True)
    status = serializers.CharField(read_only=True, help_text=f"One of: {', '.join(OrderStatus.values)}.")

    class Meta:
        model = TherapyOrder
        fields = ["id", "coi", "status", "site", "treating_site", "product", "recipient_id", "recipient_birth_year",
                  "recipient_weight_kg", "indication", "ordered_at", "accepted_at"]


class OrderDetailSerializer(OrderSerializer):
    collections = CollectionSerializer(many=True, read_only=True)
    handoffs = serializers.SerializerMethodField()
    shipments = ShipmentSerializer(many=True, read_only=True)

    class Meta(OrderSerializer.Meta):
        fields = [*OrderSerializer.Meta.fields, "collections", "handoffs", "shipments"]

    @extend_schema(responses=HandoffSerializer(many=True))
    def get_handoffs(self, order: TherapyOrder) -> list[dict[str, Any]]:
        return list(HandoffSerializer(selectors.handoffs_of(order), many=True).data)


class OrderList(generics.ListAPIView[TherapyOrder]):
    """Therapy orders the caller may see, filtered like the orders page (``q``, ``status``, ``site``,
    ``treating_site``, ``product``, ``ordered_from``/``ordered_until``, ``sort``)."""

    required_perm = Perm.CUSTODY_VIEW
    serializer_class = OrderSerializer
    filterset_class = OrderFilter

    def get_queryset(self) -> Any:
        return selectors.orders_visible(self.request.user)


class OrderDetail(generics.RetrieveAPIView[TherapyOrder]):
    """One order with its chain of identity: collections (DINs), hand-offs (blocked ones too), shipments."""

    required_perm = Perm.CUSTODY_VIEW
    serializer_class = OrderDetailSerializer

    def get_queryset(self) -> Any:
        return selectors.orders_visible(self.request.user).prefetch_related("collections__collection_site",
                                                                            "shipments__uploads__deviation")


class HandoffRequest(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=HandoffKind.choices)
    presented_identifier = serializers.CharField(max_length=80, help_text="What the scanner read.")
    location = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    notes = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")
    collection = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1,
                                          max_value=2**31 - 1,
                                          help_text="The collection (id) whose bag is handed over, before manufacture.")


class HandoffBlockedResponse(serializers.Serializer[Any]):
    presented_identifier = serializers.ListField(child=serializers.CharField())
    deviation = serializers.CharField()
    handoff = HandoffSerializer()


class OrderHandoffs(APIView):
    """Record a hand-off scan. 201 when the identifier matches; 409 when it does not — the blocked
    attempt is recorded and a custody deviation opened (both in the body)."""

    required_perm = Perm.CUSTODY_VIEW
    write_perm = Perm.CUSTODY_RECORD

    @extend_schema(request=HandoffRequest, responses={201: HandoffSerializer, 409: HandoffBlockedResponse})
    def post(self, request: Request, pk: int) -> Response:
        order = get_object_or_404(selectors.orders_visible(request.user, Perm.CUSTODY_RECORD), pk=pk)
        data = HandoffRequest(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        collection = None
        if values["collection"] is not None:
            collection = order.collections.filter(pk=values["collection"]).first()
            if collection is None:
                raise serializers.ValidationError({"collection": ["This order has no such collection."]})
        kind = values["kind"]
        site = services.handoff_site(order=order, kind=kind, collection=collection)
        assert isinstance(request.user, User)
        try:
            handoff = services.handoff_record(
                actor=request.user, order=order, kind=kind, presented_identifier=values["presented_identifier"],
                site=site, location=values["location"], notes=values["notes"], collection=collection)
        except services.HandoffBlocked as exc:
            return Response({"presented_identifier": exc.messages, "deviation": exc.deviation.reference,
                             "handoff": HandoffSerializer(exc.handoff).data}, status=status.HTTP_409_CONFLICT)
        return Response(HandoffSerializer(handoff).data, status=status.HTTP_201_CREATED)


class ReadingRow(serializers.Serializer[Any]):
    timestamp = serializers.CharField(max_length=64, help_text="ISO 8601 with offset or Z.")
    temperature_c = ApiFloatField(help_text="°C")


class TemperatureRequest(serializers.Serializer[Any]):
    rows = serializers.ListField(child=ReadingRow(), allow_empty=False, max_length=services.MAX_READINGS)


class ShipmentTemperatures(APIView):
    """Upload a data logger's readings for a shipment. A malformed row rejects the whole upload
    (400 listing the rows); readings outside the limits open a temperature deviation."""

    required_perm = Perm.CUSTODY_VIEW
    write_perm = Perm.CUSTODY_RECORD

    @extend_schema(request=TemperatureRequest, responses={201: UploadSerializer})
    def post(self, request: Request, pk: int) -> Response:
        shipment = get_object_or_404(selectors.shipments_visible(request.user, Perm.CUSTODY_RECORD), pk=pk)
        data = TemperatureRequest(data=request.data)
        data.is_valid(raise_exception=True)
        assert isinstance(request.user, User)
        rows = [dict(r) for r in data.validated_data["rows"]]
        upload = services.temperatures_upload(actor=request.user, shipment=shipment, source="api", rows=rows)
        return Response(UploadSerializer(upload).data, status=status.HTTP_201_CREATED)


urlpatterns = [
    path("custody/orders/", OrderList.as_view(), name="api-custody-orders"),
    path("custody/orders/<int:pk>/", OrderDetail.as_view(), name="api-custody-order"),
    path("custody/orders/<int:pk>/handoffs/", OrderHandoffs.as_view(), name="api-custody-handoffs"),
    path("custody/shipments/<int:pk>/temperatures/", ShipmentTemperatures.as_view(),
         name="api-custody-temperatures"),
]
