from django.urls import path

from pocare.supply import views

app_name = "supply"

urlpatterns = [
    path("supply/stock/", views.stock, name="stock"),
]
