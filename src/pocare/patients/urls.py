from django.urls import path

from pocare.patients import views

app_name = "patients"
urlpatterns = [
    path("patients/", views.navigator, name="navigator"),
    path("patients/mine/", views.physician, name="physician"),
    path("patients/refer/", views.refer, name="refer"),
    path("patients/consent-documents/", views.documents, name="documents"),
    path("patients/referrals/<int:pk>/eligibility/", views.eligibility, name="eligibility"),
    path("patients/referrals/<int:pk>/consent/", views.consent, name="consent"),
    path("patients/referrals/<int:pk>/withdraw/", views.withdraw, name="withdraw"),
    path("patients/referrals/<int:pk>/lost/", views.lost, name="lost"),
    path("patients/<str:pseudonym>/", views.patient, name="patient"),
    path("patients/<str:pseudonym>/support/", views.support, name="support"),
]
