from django.urls import path

from pocare.jobs import views

app_name = "jobs"

urlpatterns = [
    path("jobs/", views.jobs, name="jobs"),
]
