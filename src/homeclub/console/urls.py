from django.urls import path

from homeclub.customers import views as customer_views

from . import views

app_name = "console"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("customers/", views.customer_list_view, name="customer_list"),
    path("customers/new/", views.customer_create_view, name="customer_create"),
    path("customers/export.xlsx", views.customer_export_view, name="customer_export"),
    path("customers/import/", customer_views.customer_import_view, name="customer_import"),
    path(
        "customers/import/<int:pk>/",
        customer_views.customer_import_detail,
        name="customer_import_detail",
    ),
    path(
        "customers/import/<int:pk>/progress/",
        customer_views.customer_import_progress,
        name="customer_import_progress",
    ),
    path(
        "customers/import/<int:pk>/errors.xlsx",
        customer_views.customer_import_errors,
        name="customer_import_errors",
    ),
    path("customers/merge/", views.customer_merge_view, name="customer_merge"),
    path("customers/merges/<int:pk>/", views.customer_merge_record, name="customer_merge_record"),
    path("customers/verify/", views.customer_verify_list, name="customer_verify_list"),
    path("customers/validate/", views.customer_validate_field, name="customer_validate"),
    path("customers/<int:pk>/", views.customer_detail, name="customer_detail"),
    path("customers/<int:pk>/consent/", views.customer_consent_view, name="customer_consent"),
    path("customers/<int:pk>/verify/", views.customer_verify_view, name="customer_verify"),
    path("customers/<int:pk>/edit/", views.customer_edit_view, name="customer_edit"),
    path("customers/<int:pk>/delete/", views.customer_delete_view, name="customer_delete"),
    path("customers/<int:pk>/reveal/", views.customer_reveal_view, name="customer_reveal"),
    path("org/", views.org_tree, name="org_tree"),
    path("tokens/", views.token_list, name="token_list"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
    path("audit/", views.audit_list, name="audit_list"),
]
