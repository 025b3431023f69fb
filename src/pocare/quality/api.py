"""The quality API."""
from typing import Any

from django.urls import path  # noqa: F401

urlpatterns: list[Any] = []
