from typing import Any

from django.urls import path

from pocare.analytics import views

app_name = "analytics"
urlpatterns: list[Any] = [
    path("analytics/comparability/", views.comparability, name="comparability"),
    path("analytics/comparability/sites/<str:code>/", views.site_charts, name="site"),
    path("analytics/review/", views.review, name="review"),
]
