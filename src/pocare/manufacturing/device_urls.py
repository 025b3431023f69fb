"""Web pages and fragments for device data and alarms (included by manufacturing/urls.py)."""

from typing import Any

from django.urls import path

from pocare.manufacturing import device_views

urlpatterns: list[Any] = [
    path("manufacturing/batches/<str:reference>/device/", device_views.batch_device, name="batch_device"),
    path("manufacturing/batches/<str:reference>/device/readings/", device_views.batch_readings,
         name="batch_readings"),
    path("manufacturing/readings/<int:pk>/correct/", device_views.reading_correct, name="reading_correct"),
    path("manufacturing/alarms/<int:pk>/acknowledge/", device_views.alarm_acknowledge, name="alarm_acknowledge"),
]
