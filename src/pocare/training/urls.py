from django.urls import path

from pocare.training import views

app_name = "training"
urlpatterns = [
    path("training/", views.matrix, name="matrix"),
    path("training/people/<int:pk>/", views.person, name="person"),
    path("training/records/", views.records, name="records"),
    path("training/records/new/", views.record_new, name="record_new"),
    path("training/records/<int:pk>/", views.record_detail, name="record"),
    path("training/to-sign/", views.to_sign, name="to_sign"),
    path("training/qualifications/", views.qualifications, name="qualifications"),
    path("training/gate/", views.gate, name="gate"),
]
