"""The sales office's deal and inventory pages; included into the ``inventory`` namespace."""

from django.urls import path

from . import views_deals as v

urlpatterns = [
    path("units/<int:unit_id>/", v.unit_detail, name="unit_detail"),
    path("units/<int:unit_id>/subscribe/", v.unit_subscribe, name="unit_subscribe"),
    path(
        "subscriptions/<int:pk>/approve/", v.subscription_approve_view, name="subscription_approve"
    ),
    path("subscriptions/<int:pk>/reject/", v.subscription_reject_view, name="subscription_reject"),
    path("subscriptions/<int:pk>/sign/", v.subscription_sign_view, name="subscription_sign"),
    path("subscriptions/<int:pk>/cancel/", v.subscription_cancel_view, name="subscription_cancel"),
    path("subscriptions/<int:pk>/swap/", v.subscription_swap_view, name="subscription_swap"),
    path("subscriptions/<int:pk>/rename/", v.subscription_rename_view, name="subscription_rename"),
    path("contracts/<int:pk>/pay/", v.contract_pay_view, name="contract_pay"),
    path("approvals/", v.approvals, name="approvals"),
    path("projects/<int:project_id>/customers/", v.customer_choices, name="customer_choices"),
    path("projects/<int:project_id>/deals/", v.deals, name="deals"),
    path("projects/<int:project_id>/deals/export/", v.deals_export, name="deals_export"),
    path("projects/<int:project_id>/pledges/", v.pledges, name="pledges"),
    path("projects/<int:project_id>/inventory/", v.inventory_admin, name="inventory_admin"),
    path(
        "projects/<int:project_id>/inventory/buildings/",
        v.building_create_view,
        name="building_create",
    ),
    path("projects/<int:project_id>/inventory/export/", v.units_export, name="units_export"),
    path("projects/<int:project_id>/inventory/import/", v.units_import, name="units_import"),
    path(
        "projects/<int:project_id>/inventory/release/", v.release_create_view, name="release_create"
    ),
    path(
        "projects/<int:project_id>/inventory/prices/",
        v.price_list_create_view,
        name="price_list_create",
    ),
]
