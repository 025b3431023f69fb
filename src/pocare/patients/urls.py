from django.urls import path

from pocare.patients import booking_views, document_views, followup_views, identity_views, outcome_views, views

app_name = "patients"

urlpatterns = [
    # The network's outcomes (before the pseudonym routes: "outcomes" is not a pseudonym).
    path("patients/outcomes/", outcome_views.outcomes, name="outcomes"),
    path("patients/outcomes/csv/", outcome_views.outcomes_csv, name="outcomes-csv"),
    # Booking a patient's chain of slots, and a hospital's slot calendar (before the pseudonym routes too).
    path("patients/slots/<str:code>/", booking_views.slots_page, name="slots"),
    path("patients/<str:pseudonym>/booking/", booking_views.booking_page, name="booking"),
    # Follow-up (PAT-LTFU, PAT-GRADE)
    path("patients/<str:pseudonym>/follow-up/", followup_views.followup_timeline, name="followup"),
    path("patients/<str:pseudonym>/follow-up/visits/<int:pk>/", followup_views.followup_visit,
         name="followup_visit"),
    path("patients/<str:pseudonym>/follow-up/<int:referral>/adverse-events/new/", followup_views.adverse_event_new,
         name="adverse_event_new"),
    path("patients/<str:pseudonym>/follow-up/adverse-events/<int:pk>/correct/", followup_views.adverse_event_correct,
         name="adverse_event_correct"),
    # Privacy (PAT-PRIVACY): the identity panel of the treating hospital, erasure on request.
    path("patients/<str:pseudonym>/identity/", identity_views.identity, name="identity"),
    path("patients/<str:pseudonym>/identity/erase/", identity_views.identity_erase, name="identity_erase"),
    # Patient-facing documents in the patient's language, HTML or PDF (docs/patients.md).
    path("patients/<str:pseudonym>/documents/consent/", document_views.document, {"kind": "consent"},
         name="consent_document"),
    path("patients/<str:pseudonym>/documents/information/", document_views.document, {"kind": "leaflet"},
         name="leaflet"),
    path("patients/<str:pseudonym>/documents/appointments/", document_views.document, {"kind": "appointment"},
         name="appointment_letter"),
    path("patients/<str:pseudonym>/documents/questionnaire/", document_views.document, {"kind": "questionnaire"},
         name="questionnaire_document"),
    path("patients/<str:pseudonym>/questionnaire/", document_views.questionnaire, name="questionnaire"),
    # The pathway: the navigator's and physician's pages, referral, eligibility, consent, the patient.
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
