"""The master file over the API: products, versions (with content and signatures), change requests;
POST raises a change request (schema errors come back as 400 with their line numbers)."""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, Subquery
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from pocare.accounts.roles import Perm
from pocare.core.fields import ApiDateTimeField
from pocare.masterfile import selectors, services
from pocare.masterfile.filters import ChangeRequestFilter
from pocare.masterfile.models import ChangeRequest, MasterFileVersion, Product
from pocare.network.models import Site, SiteKind
from pocare.network.selectors import sites_visible


class ProductSerializer(serializers.ModelSerializer[Product]):
    effective_version = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = ["id", "code", "name", "indication", "kind", "created_at", "effective_version"]

    def get_effective_version(self, obj: Product) -> int | None:
        """The version effective in the network (a site may still be on an earlier one): annotated
        by the list's query (:func:`_with_effective_number`), so a page of products costs one query."""
        if hasattr(obj, "effective_number"):
            return obj.effective_number  # type: ignore[no-any-return]
        version = obj.versions.filter(status="effective").first()
        return version.number if version else None


def _with_effective_number(products: Any) -> Any:
    """Each product with the number of its version effective in the network (or None)."""
    effective = (MasterFileVersion.objects.filter(product=OuterRef("pk"), status="effective")
                 .order_by("-number").values("number")[:1])
    return products.annotate(effective_number=Subquery(effective))


class VersionSignatureSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    signer_username = serializers.CharField()
    signer_printed_name = serializers.CharField()
    meaning = serializers.CharField()
    signed_at = ApiDateTimeField()
    record_hash = serializers.CharField()
    valid = serializers.BooleanField()
    invalid_reason = serializers.CharField()


def _signatures(record: Any) -> list[dict[str, Any]]:
    rows = []
    for sig, valid, why in selectors.signatures_with_status(record):
        rows.append({"id": sig.pk, "signer_username": sig.signer_username,
                     "signer_printed_name": sig.signer_printed_name, "meaning": sig.meaning,
                     "signed_at": sig.signed_at, "record_hash": sig.record_hash, "valid": valid,
                     "invalid_reason": why})
    return VersionSignatureSerializer(rows, many=True).data  # type: ignore[return-value]


class VersionSerializer(serializers.ModelSerializer[MasterFileVersion]):
    product = serializers.CharField(source="product.code", read_only=True)
    author = serializers.CharField(source="author.username", read_only=True)
    reviewer = serializers.CharField(source="reviewer.username", read_only=True, default=None)
    approver = serializers.CharField(source="approver.username", read_only=True, default=None)
    change_request = serializers.CharField(source="change_request.reference", read_only=True, default=None)
    status = serializers.CharField(read_only=True, help_text="draft, in_review, approved, effective or superseded")

    class Meta:
        model = MasterFileVersion
        fields = ["id", "product", "number", "status", "summary", "change_request", "author", "reviewer",
                  "approver", "created_at", "effective_at", "superseded_at", "content_hash"]


class VersionDetailSerializer(VersionSerializer):
    content = serializers.JSONField(read_only=True)
    document = serializers.CharField(read_only=True)
    signatures = serializers.SerializerMethodField()
    required_training_steps = serializers.SerializerMethodField()

    class Meta(VersionSerializer.Meta):
        fields = [*VersionSerializer.Meta.fields, "required_training_steps", "content", "document", "signatures"]

    @extend_schema(responses=VersionSignatureSerializer(many=True))
    def get_signatures(self, obj: MasterFileVersion) -> list[dict[str, Any]]:
        return _signatures(obj)

    def get_required_training_steps(self, obj: MasterFileVersion) -> list[str]:
        return selectors.required_training_steps(obj)


class ChangeRequestSerializer(serializers.ModelSerializer[ChangeRequest]):
    product = serializers.CharField(source="product.code", read_only=True)
    base_version = serializers.IntegerField(source="base_version.number", read_only=True)
    proposed_version = serializers.SerializerMethodField()
    sites = serializers.SlugRelatedField[Site](slug_field="code", many=True, read_only=True)
    raised_by = serializers.CharField(source="raised_by.username", read_only=True)
    risk_priority = serializers.IntegerField(read_only=True)
    status = serializers.CharField(read_only=True, help_text="draft, submitted, approved, rejected or implemented")

    class Meta:
        model = ChangeRequest
        fields = ["id", "reference", "product", "title", "description", "base_version", "proposed_version",
                  "severity", "probability", "detectability", "risk_priority", "risk_class", "sites",
                  "training_steps", "comparability_evidence", "status", "raised_by", "raised_at", "decided_at"]

    def get_proposed_version(self, obj: ChangeRequest) -> int | None:
        """The id of the version the change proposes (``/api/masterfile/versions/<id>/``)."""
        version = getattr(obj, "version", None)
        return version.pk if version else None


class ChangeRequestDetailSerializer(ChangeRequestSerializer):
    signatures = serializers.SerializerMethodField()

    class Meta(ChangeRequestSerializer.Meta):
        fields = [*ChangeRequestSerializer.Meta.fields, "signatures"]

    @extend_schema(responses=VersionSignatureSerializer(many=True))
    def get_signatures(self, obj: ChangeRequest) -> list[dict[str, Any]]:
        """Signatures on the request itself (a rejection); approvals are on its proposed version."""
        return _signatures(obj)


class ChangeRequestRaise(serializers.Serializer[Any]):
    product = serializers.CharField(max_length=30)
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=8000)
    severity = serializers.IntegerField(min_value=1, max_value=5)
    probability = serializers.IntegerField(min_value=1, max_value=5)
    detectability = serializers.IntegerField(min_value=1, max_value=5)
    sites = serializers.ListField(child=serializers.CharField(max_length=8), min_length=1, max_length=50)
    comparability_evidence = serializers.CharField(max_length=8000, required=False, allow_blank=True, default="")
    document = serializers.CharField(max_length=400_000, trim_whitespace=False,
                                     help_text="The proposed master-file document as YAML text.")
    reason = serializers.CharField(max_length=2000)


class DocumentProblem(serializers.Serializer[Any]):
    line = serializers.IntegerField()
    path = serializers.CharField()
    message = serializers.CharField()


class DocumentErrors(serializers.Serializer[Any]):
    document = serializers.ListField(child=serializers.CharField())
    problems = DocumentProblem(many=True)


class ProductList(generics.ListAPIView[Product]):
    """Products with the version effective in the network."""

    required_perm = Perm.MASTERFILE_VIEW
    serializer_class = ProductSerializer

    def get_queryset(self) -> Any:
        return _with_effective_number(selectors.products_visible(self.request.user).order_by("code"))


class VersionList(generics.ListAPIView[MasterFileVersion]):
    """Master-file versions the caller may read, newest first (without their content)."""

    required_perm = Perm.MASTERFILE_VIEW
    serializer_class = VersionSerializer

    def get_queryset(self) -> Any:
        return selectors.versions_visible(self.request.user).order_by("product__code", "-number")


class VersionDetail(generics.RetrieveAPIView[MasterFileVersion]):
    """One version with its content, YAML source and signatures (each with its validity)."""

    required_perm = Perm.MASTERFILE_VIEW
    serializer_class = VersionDetailSerializer

    def get_queryset(self) -> Any:
        return selectors.versions_visible(self.request.user)


class ChangeRequestList(generics.ListAPIView[ChangeRequest]):
    """Change requests the caller may read, filtered like the page (``q``, ``status``, ``risk_class``,
    ``product``, ``site``, ``raised_from``/``raised_until``, ``sort``); POST raises one with its
    proposed document."""

    required_perm = Perm.MASTERFILE_VIEW
    write_perm = Perm.CHANGE_RAISE
    serializer_class = ChangeRequestSerializer
    filterset_class = ChangeRequestFilter

    def get_queryset(self) -> Any:
        return selectors.change_requests_visible(self.request.user)

    @extend_schema(request=ChangeRequestRaise, responses={201: ChangeRequestDetailSerializer, 400: DocumentErrors})
    def post(self, request: Request) -> Response:
        data = ChangeRequestRaise(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        product = selectors.products_visible(request.user).filter(code=values["product"]).first()
        if product is None:
            return Response({"product": [f"There is no product {values['product']!r}."]},
                            status=status.HTTP_400_BAD_REQUEST)
        codes = list(dict.fromkeys(values["sites"]))
        sites: list[Site] = list(sites_visible(request.user).exclude(kind=SiteKind.CONTROL).filter(code__in=codes))
        unknown = sorted(set(codes) - {s.code for s in sites})
        if unknown:
            known = ", ".join(Site.objects.exclude(kind=SiteKind.CONTROL).filter(
                pk__in=sites_visible(request.user)).order_by("code").values_list("code", flat=True))
            return Response({"sites": [f"Unknown site(s) {', '.join(unknown)}; use site codes: {known}."]},
                            status=status.HTTP_400_BAD_REQUEST)
        try:
            cr = services.change_request_raise(
                actor=request.user,  # type: ignore[arg-type]
                product=product, title=values["title"], description=values["description"],
                severity=values["severity"], probability=values["probability"],
                detectability=values["detectability"], sites=sites,
                comparability_evidence=values["comparability_evidence"], document=values["document"],
                reason=values["reason"],
            )
        except services.DocumentInvalid as exc:
            return Response({
                "document": [str(p) for p in exc.problems],
                "problems": [{"line": p.line, "path": p.path, "message": p.message} for p in exc.problems],
            }, status=status.HTTP_400_BAD_REQUEST)
        return Response(ChangeRequestDetailSerializer(cr).data, status=status.HTTP_201_CREATED)


class ChangeRequestDetail(generics.RetrieveAPIView[ChangeRequest]):
    """One change request with its risk, sites, training and signatures."""

    required_perm = Perm.MASTERFILE_VIEW
    serializer_class = ChangeRequestDetailSerializer

    def get_queryset(self) -> Any:
        return selectors.change_requests_visible(self.request.user)


urlpatterns = [
    path("masterfile/products/", ProductList.as_view(), name="api-masterfile-products"),
    path("masterfile/versions/", VersionList.as_view(), name="api-masterfile-versions"),
    path("masterfile/versions/<int:pk>/", VersionDetail.as_view(), name="api-masterfile-version"),
    path("masterfile/changes/", ChangeRequestList.as_view(), name="api-masterfile-changes"),
    path("masterfile/changes/<int:pk>/", ChangeRequestDetail.as_view(), name="api-masterfile-change"),
]
