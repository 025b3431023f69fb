from django.urls import path  # noqa: F401

from pocare.training import views  # noqa: F401

app_name = "training"
urlpatterns: list = []  # filled by the training views
