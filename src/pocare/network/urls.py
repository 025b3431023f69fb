from django.urls import path

from pocare.network import views

app_name = "network"
urlpatterns = [
    path("network/", views.sites, name="sites"),
    # Before <code>/: "annual-report" is not a site code (codes are capitals and digits).
    path("network/annual-report/", views.annual_report, name="annual_report"),
    path("network/units/", views.units, name="units"),
    path("network/units/<int:pk>/", views.unit_detail, name="unit"),
    path("network/authorizations/<int:pk>/revoke/", views.authorization_revoke, name="authorization_revoke"),
    path("network/<str:code>/", views.site_detail, name="site"),
    path("network/<str:code>/transition/", views.site_transition, name="site_transition"),
    path("network/<str:code>/readiness/", views.site_readiness, name="site_readiness"),
    path("network/<str:code>/runs/", views.site_run, name="site_run"),
    path("network/<str:code>/units/", views.unit_register, name="unit_register"),
    path("network/<str:code>/authorize/", views.site_authorize, name="site_authorize"),
]
