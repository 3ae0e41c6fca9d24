from django.urls import path

from . import urls_rules, views, views_adjustments

app_name = "points"

urlpatterns = [
    path("members/", views.member_list_view, name="member_list"),
    path("members/<int:member_id>/", views.member_detail, name="member_detail"),
    path(
        "members/<int:member_id>/statement.xlsx",
        views.member_statement_download,
        name="member_statement",
    ),
    path(
        "members/<int:member_id>/statement.pdf",
        views.member_statement_pdf_download,
        name="member_statement_pdf",
    ),
    path("finance/", views.finance, name="finance"),
    path("finance/flows.xlsx", views.finance_export, name="finance_export"),
    path("rates/", views.rates, name="rates"),
    path("rates/earn/", views.earn_rate_add, name="earn_rate_add"),
    path("rates/value/", views.point_value_add, name="point_value_add"),
    path("adjustments/", views_adjustments.adjustments, name="adjustments"),
    path("adjustments/new/", views_adjustments.adjustment_add, name="adjustment_add"),
    path(
        "adjustments/<int:pk>/approve/",
        views_adjustments.adjustment_decide,
        {"decision": "approve"},
        name="adjustment_approve",
    ),
    path(
        "adjustments/<int:pk>/reject/",
        views_adjustments.adjustment_decide,
        {"decision": "reject"},
        name="adjustment_reject",
    ),
]

urlpatterns += urls_rules.urlpatterns
