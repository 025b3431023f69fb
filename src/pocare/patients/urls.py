from django.urls import path

from pocare.patients import outcome_views

app_name = "patients"

urlpatterns = [
    path("patients/outcomes/", outcome_views.outcomes, name="outcomes"),
    path("patients/outcomes/csv/", outcome_views.outcomes_csv, name="outcomes-csv"),
]
