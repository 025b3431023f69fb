from django.urls import path

from pocare.accounts import views

app_name = "accounts"
urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("login/oidc/<slug:key>/", views.oidc_start, name="oidc_start"),
    path("login/oidc/<slug:key>/callback/", views.oidc_callback, name="oidc_callback"),
    path("password/change/", views.password_change, name="password_change"),
    path("password/set/<str:uidb64>/<str:token>/", views.password_set, name="password_set"),
    path("tokens/", views.tokens, name="tokens"),
    path("people/", views.people, name="people"),
    path("people/<int:pk>/", views.person, name="person"),
]
