from django.urls import path

from pocare.web import views

app_name = "web"
urlpatterns = [
    path("", views.home, name="home"),
    path("scope/", views.scope_switch, name="scope"),
    path("language/", views.language_switch, name="language"),
]
