"""Stock over the API (read), for the systems around a site — an ERP reconciling its orders, a
dashboard, the MES choosing the lot to scan: stock per site × material (× lot, × location), what a
step should take first, and the movements stock is the sum of (SUP-STOCK). Scoped like the stock
page: the sites where the person holds ``supply.view``. Receiving, counting and moving stock stay on
the pages, where each is signed or confirmed (docs/supply.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import django_filters
from django.http import Http404
from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pocare.accounts.roles import Perm
from pocare.accounts.selectors import sites_with_perm
from pocare.core.fields import ApiDateTimeField
from pocare.core.listing import ListFilterSet, SortFilter, date_range
from pocare.network.models import Site
from pocare.supply import selectors
from pocare.supply.models import MovementKind, StockMovement

CODE_HELP = "Letters, digits, '-', '_' and '.', at most 64 characters."


def _site_visible(user: Any, code: str) -> Site:
    """The site ``code`` names, if ``user`` may see its stock; else a 400 naming ``site`` (an unknown
    site and another site's stock read the same, so the answer tells nothing about the network)."""
    sites = sites_with_perm(user, Perm.SUPPLY_VIEW)
    site = Site.objects.filter(code__iexact=code).first()
    if site is None or (sites is not None and site.pk not in sites):
        raise serializers.ValidationError({"site": f"No site whose stock you may see has the code {code!r}."})
    return site


class StockQuery(serializers.Serializer[Any]):
    site = serializers.RegexField(r"^[A-Za-z][A-Za-z0-9]{1,7}$", required=False,
                                  help_text="A site code, e.g. MAD (default: every site you may see).")
    material_code = serializers.RegexField(r"^[A-Za-z0-9._-]{1,64}$", required=False, help_text=CODE_HELP)
    by = serializers.ChoiceField(choices=["material", "lot", "location"], default="material",
                                 help_text="material: site × material; lot: × lot (with expiry and status); "
                                           "location: × lot × location.")


class StockRow(serializers.Serializer[Any]):
    site = serializers.CharField()
    material_code = serializers.CharField()
    unit = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=14, decimal_places=3)
    lot_id = serializers.IntegerField(required=False)
    lot_number = serializers.CharField(required=False)
    expiry_date = serializers.DateField(required=False)
    status = serializers.CharField(required=False)
    location = serializers.CharField(required=False)


class StockAnswer(serializers.Serializer[Any]):
    as_of = ApiDateTimeField(help_text="When the movements were summed (UTC).")
    rows = StockRow(many=True)


class StockView(APIView):
    """Stock as the sum of the movements, in one query: per site × material, or × lot, or × lot ×
    location. A site you may not see and an unknown one are the same 400 naming ``site``."""

    required_perm = Perm.SUPPLY_VIEW

    @extend_schema(parameters=[StockQuery], responses={200: StockAnswer})
    def get(self, request: Request) -> Response:
        query = StockQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        site = _site_visible(request.user, q["site"]) if q.get("site") else None
        rows = selectors.stock_levels(user=request.user, site=site, material_code=q.get("material_code"),
                                      by_lot=q["by"] in ("lot", "location"), by_location=q["by"] == "location")
        return Response(StockAnswer({"as_of": timezone.now(), "rows": rows}).data)


class FirstOutQuery(serializers.Serializer[Any]):
    quantity = serializers.DecimalField(max_digits=10, decimal_places=3, min_value=Decimal("0.001"),
                                        max_value=Decimal("9999999.999"), default=Decimal(1),
                                        help_text="What the step takes, in the material's unit (default 1).")


class FirstOutLot(serializers.Serializer[Any]):
    lot_id = serializers.IntegerField()
    lot_number = serializers.CharField()
    expiry_date = serializers.DateField()
    quantity = serializers.DecimalField(max_digits=14, decimal_places=3, help_text="In stock at the site.")
    first = serializers.BooleanField(help_text="The lot to take: the first to expire with enough stock.")


class FirstOutView(APIView):
    """The released, unexpired lots of a material in stock at a site, the first to expire first, and
    which one a step taking ``quantity`` should take (first expiry, first out): another lot needs a
    reason at the step (``fefo_reasons``). A site whose stock you may not see is a 404."""

    required_perm = Perm.SUPPLY_VIEW

    @extend_schema(parameters=[FirstOutQuery], responses={200: FirstOutLot(many=True)})
    def get(self, request: Request, site: str, material_code: str) -> Response:
        query = FirstOutQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        try:
            found = _site_visible(request.user, site)
        except serializers.ValidationError:
            raise Http404("No site whose stock you may see has this code.") from None
        lots = selectors.fefo_proposal(site=found, material_code=material_code)
        first = next((lot.lot_id for lot in lots if lot.quantity >= q["quantity"]), None)
        return Response(FirstOutLot([{"lot_id": lot.lot_id, "lot_number": lot.lot_number,
                                      "expiry_date": lot.expiry_date, "quantity": lot.quantity,
                                      "first": lot.lot_id == first} for lot in lots], many=True).data)


class MovementFilter(ListFilterSet):
    search_fields = ("lot__lot_number", "lot__material_code", "reason", "batch__reference")
    search_help = "Lot, material, batch or reason"
    default_sort = ("occurred_at", "pk")
    site = django_filters.CharFilter(field_name="location__site__code", lookup_expr="iexact", max_length=8,
                                     help_text="Site code, e.g. MAD")
    material_code = django_filters.CharFilter(field_name="lot__material_code", max_length=64)
    lot_number = django_filters.CharFilter(field_name="lot__lot_number", max_length=60)
    kind = django_filters.ChoiceFilter(choices=MovementKind.choices)
    batch = django_filters.CharFilter(field_name="batch__reference", max_length=40, help_text="A batch reference")
    occurred_from, occurred_until = date_range("occurred_at", "Occurred")
    sort = SortFilter(fields=(("occurred_at", "occurred"), ("lot__lot_number", "lot")))

    class Meta:
        model = StockMovement
        fields: list[str] = []


class MovementSerializer(serializers.ModelSerializer[StockMovement]):
    site = serializers.CharField(source="location.site.code")
    location = serializers.CharField(source="location.code")
    material_code = serializers.CharField(source="lot.material_code")
    lot_number = serializers.CharField(source="lot.lot_number")
    batch = serializers.CharField(source="batch.reference", allow_null=True, default=None)
    actor = serializers.CharField(source="actor.username")
    occurred_at = ApiDateTimeField()
    event = serializers.SerializerMethodField(help_text="The ledger event that recorded it (chain#seq).")

    class Meta:
        model = StockMovement
        fields = ["id", "occurred_at", "site", "location", "material_code", "lot_id", "lot_number", "kind",
                  "quantity", "unit", "batch", "actor", "reason", "event"]

    def get_event(self, obj: StockMovement) -> str | None:
        return None if obj.event is None else f"{obj.event.chain}#{obj.event.seq}"


class MovementList(generics.ListAPIView[StockMovement]):
    """The stock movements at the sites you may see, oldest first: each a signed quantity with who, when,
    why, the batch it went to and the ledger event that recorded it. Stock is their sum."""

    required_perm = Perm.SUPPLY_VIEW
    serializer_class = MovementSerializer
    filterset_class = MovementFilter

    def get_queryset(self) -> Any:
        return selectors.movements_visible(self.request.user).select_related(
            "location__site", "lot", "batch", "actor", "event")


urlpatterns = [
    path("stock/", StockView.as_view(), name="api-stock"),
    path("stock/<str:site>/first-out/<str:material_code>/", FirstOutView.as_view(), name="api-stock-first-out"),
    path("stock/movements/", MovementList.as_view(), name="api-stock-movements"),
]
