from django.urls import path, re_path

from pocare.trail import views

app_name = "trail"
urlpatterns = [
    path("audit/", views.trail, name="trail"),
    re_path(r"^audit/export\.(?P<fmt>csv|json)$", views.trail_export_view, name="export"),
    path("audit/events/<int:pk>/", views.event_detail, name="event"),
    path("audit/verify/", views.verify, name="verify"),
    path("audit/reviews/", views.reviews, name="reviews"),
    path("audit/reviews/<int:pk>/", views.review_detail, name="review"),
]
