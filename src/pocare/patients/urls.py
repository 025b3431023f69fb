from django.urls import path

from pocare.patients import followup_views

app_name = "patients"

urlpatterns = [
    # Follow-up (PAT-LTFU, PAT-GRADE)
    path("patients/<str:pseudonym>/follow-up/", followup_views.followup_timeline, name="followup"),
    path("patients/<str:pseudonym>/follow-up/visits/<int:pk>/", followup_views.followup_visit,
         name="followup_visit"),
    path("patients/<str:pseudonym>/follow-up/<int:referral>/adverse-events/new/", followup_views.adverse_event_new,
         name="adverse_event_new"),
]
