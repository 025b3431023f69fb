from typing import Any

from django.urls import path

from pocare.quality import views

app_name = "quality"
urlpatterns: list[Any] = [
    path("quality/", views.deviations, name="deviations"),
    path("quality/deviations/<str:reference>/", views.deviation_detail, name="deviation"),
    path("quality/rules/", views.rules, name="rules"),
    path("quality/notifications/", views.notifications, name="notifications"),
    path("quality/signals/", views.signals, name="signals"),
    path("quality/trends/", views.trends, name="trends"),
]
