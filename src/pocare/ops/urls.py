"""The monitoring endpoints: outside the web UI's namespaces, at the paths probes expect."""

from django.urls import path

from pocare.ops import views

urlpatterns = [
    path("health/", views.health, name="health"),
    path("metrics", views.metrics, name="metrics"),
]
