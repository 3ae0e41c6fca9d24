"""Risk, appeal and dashboard pages; included into the ``channels`` namespace."""

from django.urls import path

from . import views_risk

urlpatterns = [
    path("risk/", views_risk.risk, name="risk"),
    path("dashboard/", views_risk.dashboard, name="dashboard"),
    path("dashboard/export/", views_risk.dashboard_export, name="dashboard_export"),
    path("appeals/", views_risk.appeals, name="appeals"),
    path("appeals/<int:pk>/", views_risk.appeal_detail, name="appeal_detail"),
    path("reports/<int:pk>/appeal/", views_risk.appeal_new, name="appeal_new"),
]
