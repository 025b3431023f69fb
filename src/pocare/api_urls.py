"""The REST API: each app registers its endpoints here, under /api/."""

from django.urls import include, path

urlpatterns = [
    path("", include("pocare.accounts.api")),
    path("", include("pocare.network.api")),
    path("", include("pocare.trail.api")),
    path("", include("pocare.masterfile.api")),
    path("", include("pocare.training.api")),
    path("", include("pocare.quality.api")),
    path("", include("pocare.custody.api")),
    path("", include("pocare.manufacturing.api")),
    path("", include("pocare.analytics.api")),
    path("", include("pocare.release.api")),
    path("", include("pocare.patients.api")),  # the pathway, pseudonymous (docs/patients.md)
    path("", include("pocare.jobs.api")),  # the job queue (docs/jobs.md)
    path("", include("pocare.supply.api")),  # stock, read (docs/supply.md)
]
