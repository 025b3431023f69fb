from django.urls import path

from pocare.costs import views

app_name = "costs"

urlpatterns = [
    path("costs/models/", views.model_list, name="models"),
    path("costs/batches/<str:reference>/", views.batch_cost, name="batch"),
]
