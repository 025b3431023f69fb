from django.urls import path

from pocare.custody import reading_views, views

app_name = "custody"
urlpatterns = [
    path("custody/", views.orders, name="orders"),
    path("custody/orders/new/", views.order_new, name="order_new"),
    path("custody/orders/<int:pk>/", views.order_detail, name="order"),
    path("custody/orders/<int:pk>/accept/", views.order_accept, name="order_accept"),
    path("custody/orders/<int:pk>/collections/", views.collection_new, name="collection_new"),
    path("custody/orders/<int:pk>/handoffs/", views.handoff_new, name="handoff_new"),
    path("custody/orders/<int:pk>/shipments/", views.shipment_new, name="shipment_new"),
    path("custody/shipments/<int:pk>/upload/", views.upload_new, name="upload_new"),
    path("custody/shipments/<int:pk>/readings/", reading_views.shipment_readings, name="shipment_readings"),
    path("custody/readings/<int:pk>/correct/", reading_views.temperature_correct, name="temperature_correct"),
    path("custody/orders/<int:pk>/labels/<str:container>.svg", views.label_svg, name="label_svg"),
    path("custody/orders/<int:pk>/labels.pdf", views.labels_pdf, name="labels_pdf"),
]
