"""The batch record over the API."""

from django.urls import path  # noqa: F401

from pocare.manufacturing import device_api

urlpatterns: list = [
    *device_api.urlpatterns,
]
