from django.urls import path

from . import urls_rules, views

app_name = "points"

urlpatterns = [
    path("members/", views.member_list_view, name="member_list"),
    path("members/<int:member_id>/", views.member_detail, name="member_detail"),
    path(
        "members/<int:member_id>/statement.xlsx",
        views.member_statement_download,
        name="member_statement",
    ),
    path("finance/", views.finance, name="finance"),
    path("finance/flows.xlsx", views.finance_export, name="finance_export"),
    path("rates/", views.rates, name="rates"),
    path("rates/earn/", views.earn_rate_add, name="earn_rate_add"),
    path("rates/value/", views.point_value_add, name="point_value_add"),
]

urlpatterns += urls_rules.urlpatterns
