from django.urls import path

from pocare.network import views

app_name = "network"
urlpatterns = [
    path("network/", views.sites, name="sites"),
    path("network/<str:code>/", views.site_detail, name="site"),
]
