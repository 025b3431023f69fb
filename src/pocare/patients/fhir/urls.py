"""``/fhir/`` (mounted in pocare.urls). Names start with ``api-`` (the permission matrix treats them as API).
Types and ids match loosely so that the views, not Django's HTML 404, answer a wrong one (OperationOutcome)."""

from django.urls import path, re_path

from pocare.patients.fhir import views

_TYPE = r"(?P<resource_type>[^/$]+)"
_ID = r"(?P<resource_id>[^/$]+)"

urlpatterns = [
    path("", views.Transaction.as_view(), name="api-fhir-transaction"),
    path("metadata", views.Metadata.as_view(), name="api-fhir-metadata"),
    re_path(rf"^Patient/{_ID}/\$everything$", views.Everything.as_view(), name="api-fhir-everything"),
    re_path(rf"^{_TYPE}/_search$", views.SearchByPost.as_view(), name="api-fhir-search"),
    re_path(rf"^{_TYPE}/{_ID}$", views.Read.as_view(), name="api-fhir-read"),
    re_path(rf"^{_TYPE}$", views.TypeEndpoint.as_view(), name="api-fhir-type"),
]
