from django.urls import path  # noqa: F401

from pocare.manufacturing import views  # noqa: F401

app_name = "manufacturing"
urlpatterns: list = []
