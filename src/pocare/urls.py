"""Top-level URL map: the web UI at /, the REST API under /api/."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/", include("pocare.api_urls")),
    path("fhir/", include("pocare.patients.fhir.urls")),  # FHIR R5 (docs/fhir.md)
    path("", include("pocare.ops.urls")),  # /health/ and /metrics (docs/operations.md)
    path("", include("pocare.web.urls")),
    path("", include("pocare.accounts.urls")),
    path("", include("pocare.network.urls")),
    path("", include("pocare.trail.urls")),
    path("", include("pocare.masterfile.urls")),
    path("", include("pocare.training.urls")),
    path("", include("pocare.quality.urls")),
    path("", include("pocare.custody.urls")),
    path("", include("pocare.manufacturing.urls")),
    path("", include("pocare.analytics.urls")),
    path("", include("pocare.planning.urls")),
    path("", include("pocare.release.urls")),
    path("", include("pocare.jobs.urls")),  # the job queue (docs/jobs.md)
    path("", include("pocare.patients.urls")),  # the patient's pathway (docs/patients.md)
    path("", include("pocare.supply.urls")),  # stock by site, location and lot (docs/supply.md)
    path("", include("pocare.costs.urls")),  # the cost model, the cost of a batch (docs/costs.md)
]
