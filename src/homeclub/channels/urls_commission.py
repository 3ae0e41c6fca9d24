"""Commission pages, included into the ``channels`` namespace (``channels:commission_*``)
under ``commissions/``."""

from django.urls import path

from . import views_commission as views

urlpatterns = [
    path("commissions/", views.commission_home, name="commission_home"),
    path("commissions/entries/", views.commission_entries, name="commission_entries"),
    path("commissions/mine/", views.commission_mine, name="commission_mine"),
    path(
        "commissions/statements/<int:pk>/",
        views.commission_statement,
        name="commission_statement",
    ),
    path(
        "commissions/statements/<int:pk>/xlsx/",
        views.commission_statement_xlsx,
        name="commission_statement_xlsx",
    ),
    path(
        "commissions/statements/<int:pk>/<slug:action>/",
        views.commission_statement_action,
        name="commission_statement_action",
    ),
]
