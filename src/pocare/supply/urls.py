from django.urls import path

from pocare.supply import views

app_name = "supply"

urlpatterns = [
    path("supply/stock/", views.stock, name="stock"),
    path("supply/trace/", views.trace, name="trace"),
    path("supply/reorder/", views.reorder_page, name="reorder"),
    path("supply/lots/<int:pk>/", views.lot_card, name="lot"),
    path("supply/recalls/", views.recall_list, name="recalls"),
    path("supply/recalls/<slug:reference>/", views.recall_detail, name="recall"),
]
