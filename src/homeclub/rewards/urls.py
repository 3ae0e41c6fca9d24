from django.urls import path

from . import views

app_name = "rewards"

urlpatterns = [
    # club operators
    path("items/", views.items, name="items"),
    path("items/new/", views.item_new, name="item_new"),
    path("items/<int:pk>/", views.item_edit, name="item_edit"),
    path("items/<int:pk>/stock/", views.item_stock, name="item_stock"),
    path("items/<int:pk>/codes/import/", views.item_codes_import, name="item_codes_import"),
    path("items/<int:pk>/codes/generate/", views.item_codes_generate, name="item_codes_generate"),
    path("orders/", views.orders, name="orders"),
    path("orders/new/", views.order_new, name="order_new"),
    path("orders/<int:pk>/fulfil/", views.order_fulfil_view, name="order_fulfil"),
    path("orders/<int:pk>/cancel/", views.order_cancel_view, name="order_cancel"),
    # members
    path("", views.catalogue, name="catalogue"),
    path("<int:item_id>/order/", views.catalogue_order, name="catalogue_order"),
    path("my-orders/", views.my_orders, name="my_orders"),
]
