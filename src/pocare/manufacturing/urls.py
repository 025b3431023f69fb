from typing import Any

from django.urls import path

from pocare.manufacturing import device_urls, views

app_name = "manufacturing"
urlpatterns: list[Any] = [
    path("manufacturing/", views.batches, name="batches"),
    path("manufacturing/lots/", views.lots, name="lots"),
    path("manufacturing/orders/<int:order>/start/", views.batch_start, name="batch_start"),
    path("manufacturing/values/<int:pk>/correct/", views.value_correct, name="value_correct"),
    path("manufacturing/batches/<str:reference>/", views.batch_detail, name="batch"),
    path("manufacturing/batches/<str:reference>/review/", views.batch_review, name="batch_review"),
    path("manufacturing/batches/<str:reference>/steps/<str:step_id>/", views.step, name="step"),
    path("manufacturing/batches/<str:reference>/qc/<str:attribute_id>/", views.qc_result, name="qc_result"),
    *device_urls.urlpatterns,
]
