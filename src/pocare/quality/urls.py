from typing import Any

from django.urls import path  # noqa: F401

from pocare.quality import views  # noqa: F401

app_name = "quality"
urlpatterns: list[Any] = []
