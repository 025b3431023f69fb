"""The navigator's booking pages (docs/patients.md): a patient's slot chain, a hospital's slots."""

from django.urls import path

from pocare.patients import booking_views as views

app_name = "patients_booking"

urlpatterns = [
    path("patients/<str:pseudonym>/booking/", views.booking_page, name="booking"),
    path("patients/slots/<str:code>/", views.slots_page, name="slots"),
]
