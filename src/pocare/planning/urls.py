from typing import Any

from django.urls import path

from pocare.planning import views

app_name = "planning"
urlpatterns: list[Any] = [
    path("planning/", views.runs, name="runs"),
    path("planning/plan/new/", views.plan_new, name="plan_new"),
    path("planning/twin/new/", views.twin_new, name="twin_new"),
    path("planning/autarky/", views.autarky, name="autarky"),
    path("planning/runs/<int:pk>/", views.run, name="run"),
    path("planning/runs/<int:pk>/report/", views.run_report, name="run_report"),
    path("planning/business-case/", views.business_case, name="business_case"),
]
