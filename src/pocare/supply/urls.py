from django.urls import path

from pocare.supply import material_views, purchase_views, transfer_views, views

app_name = "supply"

urlpatterns = [
    path("supply/stock/", views.stock, name="stock"),
    path("supply/trace/", views.trace, name="trace"),
    path("supply/reorder/", views.reorder_page, name="reorder"),
    path("supply/materials/", material_views.materials, name="materials"),
    path("supply/lots/<int:pk>/", views.lot_card, name="lot"),
    path("supply/recalls/", views.recall_list, name="recalls"),
    path("supply/recalls/<slug:reference>/", views.recall_detail, name="recall"),
    path("supply/transfers/", transfer_views.transfer_list, name="transfers"),
    path("supply/transfers/<slug:reference>/", transfer_views.transfer_detail, name="transfer"),
    path("supply/transfers/<slug:reference>/disposition/", transfer_views.transfer_disposition,
         name="transfer_disposition"),
    path("supply/purchases/", purchase_views.purchase_list, name="purchases"),
    path("supply/purchases/<slug:reference>/", purchase_views.purchase_detail, name="purchase"),
]
