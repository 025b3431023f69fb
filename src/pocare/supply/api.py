"""Stock over the API, for the systems around a site — an ERP reconciling its orders, a dashboard, the
MES choosing the lot to scan: stock per site × material (× lot, × location), what a step should take
first, and the movements stock is the sum of (SUP-STOCK), scoped like the stock page to the sites
where the person holds ``supply.view``; and goods receipts, once per ``Idempotency-Key``
(``receipts.py``). Counting, moving, issuing and destroying stay on the pages, where each is signed or
confirmed (docs/supply.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import django_filters
from django.http import Http404
from django.urls import path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from pocare.accounts.models import User
from pocare.accounts.roles import Perm
from pocare.accounts.selectors import sites_with_perm
from pocare.core.fields import ApiDateTimeField
from pocare.core.listing import ListFilterSet, SortFilter, date_range
from pocare.network.models import Site
from pocare.supply import purchases, receipts, selectors
from pocare.supply.models import MovementKind, StockMovement

CODE_HELP = "Letters, digits, '-', '_' and '.', at most 64 characters."


def _site_visible(user: Any, code: str) -> Site:
    """The site ``code`` names, if ``user`` may see its stock; else a 400 naming ``site`` (an unknown
    site and another site's stock read the same, so the answer tells nothing about the network)."""
    sites = sites_with_perm(user, Perm.SUPPLY_VIEW)
    site = Site.objects.filter(code__iexact=code).first()
    if site is None or (sites is not None and site.pk not in sites):
        raise serializers.ValidationError({"site": [f"No site whose stock you may see has the code {code!r}."]})
    return site


class StockQuery(serializers.Serializer[Any]):
    site = serializers.RegexField(r"^[A-Za-z][A-Za-z0-9]{1,7}$", required=False,
                                  help_text="A site code, e.g. MAD (default: every site you may see).")
    material_code = serializers.RegexField(r"^[A-Za-z0-9._-]{1,64}$", required=False, help_text=CODE_HELP)
    by = serializers.ChoiceField(choices=["material", "lot", "location"], default="material",
                                 help_text="material: site × material; lot: × lot (with expiry and status); "
                                           "location: × lot × location.")
    empty = serializers.BooleanField(default=False, help_text="Also the rows that add up to 0 (lots used up, "
                                                              "locations emptied); left out by default.")


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
    location (one site at a time, for whoever sees several). A site you may not see and an unknown one
    are the same 400 naming ``site``."""

    required_perm = Perm.SUPPLY_VIEW

    @extend_schema(parameters=[StockQuery], responses={200: StockAnswer})
    def get(self, request: Request) -> Response:
        query = StockQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        site = _site_visible(request.user, q["site"]) if q.get("site") else None
        seen = sites_with_perm(request.user, Perm.SUPPLY_VIEW)
        if q["by"] != "material" and site is None and (seen is None or len(seen) > 1):
            # Per lot across a network is its whole history of lots (480,000 rows and 2.6 s at 500 sites ×
            # 10 years, benchmarks/README.md): one site at a time.
            raise serializers.ValidationError({"site": [f"Stock by {q['by']} is read one site at a time: name the "
                                                        "site (stock per material covers every site at once)."]})
        rows = selectors.stock_levels(user=request.user, site=site, material_code=q.get("material_code"),
                                      by_lot=q["by"] in ("lot", "location"), by_location=q["by"] == "location",
                                      held_only=not q["empty"])
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
        first = selectors.first_to_take(lots, q["quantity"])
        return Response(FirstOutLot([{"lot_id": lot.lot_id, "lot_number": lot.lot_number,
                                      "expiry_date": lot.expiry_date, "quantity": lot.quantity,
                                      "first": lot == first} for lot in lots], many=True).data)


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


class ReceiptBody(serializers.Serializer[Any]):
    site = serializers.RegexField(r"^[A-Za-z][A-Za-z0-9]{1,7}$", help_text="The receiving site's code, e.g. MAD.")
    location = serializers.RegexField(r"^[A-Za-z0-9_.-]{1,20}$", default="STORE",
                                      help_text="The location's code at the site (default STORE).")
    supplier = serializers.CharField(max_length=200, help_text="The supplier's registered name, e.g. BD.")
    material_code = serializers.RegexField(r"^[A-Za-z0-9._-]{1,64}$", help_text=CODE_HELP)
    lot_number = serializers.CharField(max_length=60, help_text="The supplier's lot number.")
    expiry_date = serializers.CharField(max_length=10, help_text="YYYY-MM-DD: not past, at most 20 years ahead.")
    quantity = serializers.CharField(max_length=30, help_text="Greater than 0, at most 1,000,000, ≤ 3 decimals.")
    unit = serializers.CharField(max_length=20, required=False, allow_blank=True,
                                 help_text="The master file's unit of the material (default: that unit).")
    reason = serializers.CharField(max_length=500, help_text="e.g. Delivery note 48211 checked.")
    purchase = serializers.RegexField(r"^PR-[0-9]{4}-[0-9]{4,6}$", required=False,
                                      help_text="The purchase request it delivers, e.g. PR-2026-0001.")
    unit_price = serializers.CharField(max_length=30, required=False, allow_blank=True,
                                       help_text="With a purchase: the invoice price of a unit (0–1,000,000, "
                                                 "≤ 4 decimals).")


class ReceiptAnswer(serializers.Serializer[Any]):
    movement = MovementSerializer()
    lot_status = serializers.CharField(help_text="quarantine until QC releases it on its stock card.")
    purchase = serializers.DictField(allow_null=True, help_text="reference, status, ordered, received.")


def _places(quantity: Decimal) -> str:
    """A quantity as the API writes one: three decimals, whichever database summed it."""
    return f"{Decimal(quantity).quantize(Decimal('0.001')):f}"


class ReceiptView(APIView):
    """Receive goods (SUP-STOCK): the supplier's lot into quarantine at a location of the site, as on the stock
    page, or as a delivery against a purchase request. Send a unique ``Idempotency-Key`` header per receipt:
    a retry with the same key and body stores nothing and answers 200 with the first receipt; the same key with
    another body is a 409. Each refused field is a 400 naming it; nothing is stored."""

    required_perm = Perm.SUPPLY_VIEW
    write_perm = Perm.MATERIALS_MANAGE

    @extend_schema(
        request=ReceiptBody,
        parameters=[OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=True,
                                     description=f"A unique key per receipt (1 to {receipts.MAX_KEY_LENGTH} "
                                                 "printable characters, e.g. a UUID); a retry sends the same key.")],
        responses={201: ReceiptAnswer, 200: OpenApiResponse(ReceiptAnswer, "A retried receipt."),
                   409: OpenApiResponse(description="The key was used for another receipt.")})
    def post(self, request: Request) -> Response:
        body = ReceiptBody(data=request.data)
        body.is_valid(raise_exception=True)
        assert isinstance(request.user, User)
        try:
            done = receipts.receipt_over_api(actor=request.user, idempotency_key=request.headers.get(
                "Idempotency-Key", ""), receipt=body.validated_data)
        except receipts.ReceiptKeyConflict as exc:
            return Response({"Idempotency-Key": [str(exc)]}, status=status.HTTP_409_CONFLICT)
        movement = StockMovement.objects.select_related("location__site", "lot", "batch", "actor", "event") \
            .get(pk=done.movement.pk)
        purchase = None
        if done.delivery is not None:
            found = done.delivery.request
            found.refresh_from_db()
            purchase = {"reference": found.reference, "status": found.status, "ordered": _places(found.quantity),
                        "received": _places(purchases.delivered(found))}
        return Response(ReceiptAnswer({"movement": movement, "lot_status": movement.lot.status,
                                       "purchase": purchase}).data,
                        status=status.HTTP_201_CREATED if done.created else status.HTTP_200_OK)


urlpatterns = [
    path("stock/", StockView.as_view(), name="api-stock"),
    path("stock/<str:site>/first-out/<str:material_code>/", FirstOutView.as_view(), name="api-stock-first-out"),
    path("stock/movements/", MovementList.as_view(), name="api-stock-movements"),
    path("stock/receipts/", ReceiptView.as_view(), name="api-stock-receipts"),
]
