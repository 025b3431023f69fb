from typing import Any

from django.urls import path

from pocare.release import bundle_views, views

app_name = "release"
urlpatterns: list[Any] = [
    path("release/", views.queue, name="queue"),
    path("release/batches/<str:reference>/", views.batch, name="batch"),
    path("release/batches/<str:reference>/exceptions-review/", views.exceptions_review, name="exceptions_review"),
    path("release/batches/<str:reference>/qc-review/", views.qc_review, name="qc_review"),
    path("release/batches/<str:reference>/decision/", views.decide, name="decide"),
    path("release/batches/<str:reference>/certificate/", views.certificate_download, name="certificate"),
    path("release/batches/<str:reference>/oos/", views.oos_request, name="oos_request"),
    path("release/batches/<str:reference>/oos/<int:pk>/evaluate/", views.oos_evaluate, name="oos_evaluate"),
    path("release/batches/<str:reference>/oos/<int:pk>/accept/", views.oos_accept, name="oos_accept"),
    path("release/batches/<str:reference>/oos/<int:pk>/notify/", views.oos_notify, name="oos_notify"),
    *bundle_views.bundle_urlpatterns,  # the inspector bundle (release/bundle.py)
]
