from django.urls import path  # noqa: F401

from pocare.masterfile import views  # noqa: F401

app_name = "masterfile"
urlpatterns: list = []  # filled by the masterfile views
