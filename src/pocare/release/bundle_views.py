"""The inspector bundle over the web and the API: one POST, one zip, the export recorded.

The release app's URL modules include these lists: ``bundle_urlpatterns`` in ``release/urls.py``
(web, ``release:bundle``) and ``bundle_api_urlpatterns`` in ``release/api.py`` (``api-batch-bundle``).
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_POST
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from pocare.accounts.decorators import requires
from pocare.accounts.models import User
from pocare.accounts.roles import Perm
from pocare.manufacturing.models import Batch
from pocare.manufacturing.selectors import batch_for
from pocare.release.bundle import BundleUnavailable, bundle_export


def _bundle_response(user: Any, reference: str) -> HttpResponse:
    try:
        batch = batch_for(user, reference)
    except Batch.DoesNotExist:
        raise Http404("No such batch.") from None
    assert isinstance(user, User)
    try:
        export = bundle_export(actor=user, batch=batch)
    except BundleUnavailable as exc:
        return HttpResponse(str(exc), status=503, content_type="text/plain; charset=utf-8")
    response = HttpResponse(export.content, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    response["X-POCare-Export-Event"] = export.event_label
    response["X-POCare-Bundle-SHA256"] = export.sha256
    response["X-POCare-Manifest-SHA256"] = export.manifest_sha256
    return response


@requires(Perm.BUNDLE_EXPORT, recorded_read=True)
@require_POST
def bundle(request: HttpRequest, reference: str) -> HttpResponse:
    """The batch's inspector bundle (zip); the export is recorded in the audit trail. 404 for a
    batch the person may not see; 503 when the PDF engine cannot run."""
    return _bundle_response(request.user, reference)


class BatchBundle(APIView):
    """The batch's inspector bundle as ``application/zip``: batch.json, signatures.json,
    ledger.jsonl, dossier.pdf, manifest.json, manifest.sha256 and verify_bundle.py. The export is a
    ledger event (``release.bundle_exported``) named in the ``X-POCare-Export-Event`` header."""

    required_perm = Perm.BUNDLE_EXPORT
    recorded_read = True  # inspectors export too; a POST because the export is recorded

    @extend_schema(request=None, responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY),
                              503: OpenApiResponse(description="The PDF engine cannot run on this server.")})
    def post(self, request: Request, reference: str) -> HttpResponse:
        return _bundle_response(request.user, reference)


bundle_urlpatterns: list[Any] = [
    path("release/batches/<str:reference>/bundle.zip", bundle, name="bundle"),
]
bundle_api_urlpatterns: list[Any] = [
    path("batches/<str:reference>/bundle/", BatchBundle.as_view(), name="api-batch-bundle"),
]
