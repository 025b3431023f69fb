from django.urls import path

from pocare.costs import views

app_name = "costs"

urlpatterns = [
    path("costs/models/", views.model_list, name="models"),
    path("costs/batches/<str:reference>/", views.batch_cost, name="batch"),
    path("costs/reports/", views.report_page, name="reports"),
    path("costs/reports/sign/", views.report_sign, name="report_sign"),
    path("costs/reports/<int:pk>/", views.report_detail, name="report"),
    path("costs/patients/<str:pseudonym>/", views.patient_cost, name="patient"),
]
