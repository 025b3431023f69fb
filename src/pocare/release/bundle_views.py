"""The inspector bundle over the web and the API: one POST queues the job that makes the zip and
records the export; the job's page (``/jobs/<id>/``) or ``/api/jobs/<id>/`` offers the file.

The release app's URL modules include these lists: ``bundle_urlpatterns`` in ``release/urls.py``
(web, ``release:bundle``) and ``bundle_api_urlpatterns`` in ``release/api.py`` (``api-batch-bundle``).
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.urls import path
from django.views.decorators.http import require_POST
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from pocare.accounts.decorators import requires
from pocare.accounts.models import User
from pocare.accounts.roles import Perm
from pocare.jobs.api import accepted
from pocare.manufacturing.models import Batch
from pocare.manufacturing.selectors import batch_for
from pocare.release.bundle import BundleUnavailable, bundle_export_request


def _bundle_job(user: Any, reference: str) -> Any:
    """Queue the bundle's job (in this request's transaction); 503 text when PDFs cannot be made here."""
    try:
        batch = batch_for(user, reference)
    except Batch.DoesNotExist:
        raise Http404("No such batch.") from None
    assert isinstance(user, User)
    try:
        return bundle_export_request(actor=user, batch=batch)
    except BundleUnavailable as exc:
        return HttpResponse(str(exc), status=503, content_type="text/plain; charset=utf-8")


@requires(Perm.BUNDLE_EXPORT, recorded_read=True)
@require_POST
def bundle(request: HttpRequest, reference: str) -> HttpResponseBase:
    """Queue the batch's inspector bundle (zip) as a job and go to the job's page, which offers the
    download when it is made; the export is recorded in the audit trail by the job. 404 for a batch
    the person may not see; 503 when the PDF engine cannot run."""
    job = _bundle_job(request.user, reference)
    return job if isinstance(job, HttpResponse) else redirect("jobs:job", pk=job.pk)


class BatchBundle(APIView):
    """Queue the batch's inspector bundle: 202 with the job (``url``: poll ``/api/jobs/<id>/`` until
    done, then POST to its ``file.url`` for the ``application/zip``: batch.json, signatures.json,
    ledger.jsonl, dossier.pdf, manifest.json, manifest.sha256 and verify_bundle.py). The export is a
    ledger event (``release.bundle_exported``) recorded by the job, named in the job's result
    (``event``) and in the download's ``X-POCare-Export-Event`` header."""

    required_perm = Perm.BUNDLE_EXPORT
    recorded_read = True  # inspectors export too; a POST because the export is recorded

    @extend_schema(request=None, responses={202: OpenApiResponse(OpenApiTypes.OBJECT, description="The job queued."),
                              503: OpenApiResponse(description="The PDF engine cannot run on this server.")})
    def post(self, request: Request, reference: str) -> HttpResponseBase:
        job = _bundle_job(request.user, reference)
        return job if isinstance(job, HttpResponse) else accepted(job)


bundle_urlpatterns: list[Any] = [
    path("release/batches/<str:reference>/bundle.zip", bundle, name="bundle"),
]
bundle_api_urlpatterns: list[Any] = [
    path("batches/<str:reference>/bundle/", BatchBundle.as_view(), name="api-batch-bundle"),
]
