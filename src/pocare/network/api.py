"""Sites, their lifecycle and their manufacturing units over the API, scoped like the web pages."""

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
from pocare.core.fields import ApiDateField
from pocare.ledger.models import Signature
from pocare.ledger.signing import SigningCredentials, signatures_for
from pocare.ledger.verify import signature_status
from pocare.network import selectors, services
from pocare.network.filters import SiteFilter, UnitFilter
from pocare.network.models import ManufacturingUnit, Site, SiteStatus, SiteTransition, UnitStatus


class SiteSerializer(serializers.ModelSerializer[Site]):
    class Meta:
        model = Site
        fields = ["id", "code", "name", "kind", "status", "facility_id", "city", "country",
                  "address", "latitude", "longitude", "time_zone", "created_at"]


class SiteList(generics.ListAPIView[Site]):
    """The sites the caller may see, with the site page's filters (``q``, ``kind``, ``status``, ``sort``)."""

    required_perm = Perm.NETWORK_VIEW
    serializer_class = SiteSerializer
    filterset_class = SiteFilter

    def get_queryset(self) -> Any:
        # The page's queryset: the filter sorts by its people and units counts, annotated here.
        return selectors.sites_overview(self.request.user)


class SiteDetail(generics.RetrieveAPIView[Site]):
    required_perm = Perm.NETWORK_VIEW
    serializer_class = SiteSerializer
    lookup_field = "code"

    def get_queryset(self) -> Any:
        return selectors.sites_visible(self.request.user)


_SITE_STATUSES = ", ".join(SiteStatus.values)


class UnitSerializer(serializers.ModelSerializer[ManufacturingUnit]):
    site = serializers.CharField(source="site.code", read_only=True)
    # Plain strings in the schema: one enum per choice set would collide with the site's "status".
    status = serializers.CharField(read_only=True, help_text=f"One of: {', '.join(UnitStatus.values)}.")
    usable = serializers.SerializerMethodField(help_text="May the unit be used now (status and due dates).")
    unusable_reason = serializers.SerializerMethodField()

    class Meta:
        model = ManufacturingUnit
        fields = ["id", "site", "device_type", "model", "serial", "status", "calibration_due", "maintenance_due",
                  "qualified_at", "created_at", "usable", "unusable_reason"]

    def get_usable(self, unit: ManufacturingUnit) -> bool:
        return selectors.unit_usable(unit)[0]

    def get_unusable_reason(self, unit: ManufacturingUnit) -> str:
        return selectors.unit_usable(unit)[1]


class UnitList(generics.ListAPIView[ManufacturingUnit]):
    """Manufacturing units of the sites the caller may see, with the units page's filters
    (``q``, ``site=MAD``, ``status``, ``device_type``, calibration due dates, ``sort``)."""

    required_perm = Perm.NETWORK_VIEW
    serializer_class = UnitSerializer
    filterset_class = UnitFilter

    def get_queryset(self) -> Any:
        return selectors.units_visible(self.request.user)


class SiteUnitList(generics.ListAPIView[ManufacturingUnit]):
    """Manufacturing units of one site."""

    required_perm = Perm.NETWORK_VIEW
    serializer_class = UnitSerializer
    queryset = ManufacturingUnit.objects.none()  # the schema generator's hint; get_queryset scopes

    def get_queryset(self) -> Any:
        site = get_object_or_404(selectors.sites_visible(self.request.user), code=self.kwargs["code"])
        return selectors.units_visible(self.request.user).filter(site=site).order_by("serial")


class Requalify(serializers.Serializer[Any]):
    calibration_due = ApiDateField()
    maintenance_due = ApiDateField()
    reason = serializers.CharField(max_length=1000)


class UnitRequalify(APIView):
    """Record a unit's requalification: new calibration and maintenance due dates."""

    required_perm = Perm.UNITS_MANAGE
    write_perm = Perm.UNITS_MANAGE

    @extend_schema(request=Requalify, responses={200: UnitSerializer})
    def post(self, request: Request, pk: int) -> Response:
        unit = get_object_or_404(selectors.units_visible(request.user, Perm.UNITS_MANAGE), pk=pk)
        data = Requalify(data=request.data)
        data.is_valid(raise_exception=True)
        assert isinstance(request.user, User)
        unit = services.unit_requalify(actor=request.user, unit=unit, **data.validated_data)
        return Response(UnitSerializer(unit).data)


class SignatureSummary(serializers.ModelSerializer[Signature]):
    valid = serializers.SerializerMethodField()

    class Meta:
        model = Signature
        fields = ["id", "signer_username", "signer_printed_name", "meaning", "signed_at", "record_hash", "valid"]

    def get_valid(self, signature: Signature) -> bool:
        return signature_status(signature)[0]


class TransitionSerializer(serializers.ModelSerializer[SiteTransition]):
    site = serializers.CharField(source="site.code", read_only=True)
    from_status = serializers.CharField(read_only=True, help_text=f"One of: {_SITE_STATUSES}.")
    to_status = serializers.CharField(read_only=True, help_text=f"One of: {_SITE_STATUSES}.")
    actor = serializers.CharField(source="actor.username", read_only=True)
    signatures = serializers.SerializerMethodField()

    class Meta:
        model = SiteTransition
        fields = ["id", "site", "from_status", "to_status", "reason", "evidence", "actor", "at", "signatures"]

    @extend_schema(responses=SignatureSummary(many=True))
    def get_signatures(self, record: SiteTransition) -> list[dict[str, Any]]:
        return list(SignatureSummary(signatures_for(record), many=True).data)


class TransitionRequest(serializers.Serializer[Any]):
    # Checked by the service, which names what the site may move to from where it is.
    to_status = serializers.CharField(max_length=15, help_text=f"One of: {_SITE_STATUSES}.")
    reason = serializers.CharField(max_length=1000)
    username = serializers.CharField(max_length=150, help_text="Your user id: both components, every time.")
    password = serializers.CharField(max_length=256, style={"input_type": "password"})


class SiteTransitions(generics.ListAPIView[SiteTransition]):
    """A site's lifecycle transitions. POST moves the site on, signed by Control Site QA with user id
    and password (403 when they do not authenticate the caller)."""

    required_perm = Perm.NETWORK_VIEW
    write_perm = Perm.SITES_GOVERN
    serializer_class = TransitionSerializer
    queryset = SiteTransition.objects.none()  # the schema generator's hint; get_queryset scopes

    def _site(self) -> Site:
        return get_object_or_404(selectors.sites_visible(self.request.user), code=self.kwargs["code"])

    def get_queryset(self) -> Any:
        return selectors.transitions_visible(self.request.user).filter(site=self._site()).order_by("at", "pk")

    @extend_schema(request=TransitionRequest, responses={201: TransitionSerializer})
    def post(self, request: Request, code: str) -> Response:
        site = self._site()
        data = TransitionRequest(data=request.data)
        data.is_valid(raise_exception=True)
        assert isinstance(request.user, User)
        record = services.site_transition(  # a refused signature is a 403 (core/api.py)
            actor=request.user, site=site, to_status=data.validated_data["to_status"],
            reason=data.validated_data["reason"],
            credentials=SigningCredentials(username=data.validated_data["username"],
                                           password=data.validated_data["password"]),
        )
        return Response(TransitionSerializer(record).data, status=status.HTTP_201_CREATED)


urlpatterns = [
    path("sites/", SiteList.as_view(), name="api-sites"),
    path("sites/<str:code>/", SiteDetail.as_view(), name="api-site"),
    path("sites/<str:code>/units/", SiteUnitList.as_view(), name="api-site-units"),
    path("sites/<str:code>/transitions/", SiteTransitions.as_view(), name="api-site-transitions"),
    path("units/", UnitList.as_view(), name="api-units"),
    path("units/<int:pk>/requalify/", UnitRequalify.as_view(), name="api-unit-requalify"),
]
