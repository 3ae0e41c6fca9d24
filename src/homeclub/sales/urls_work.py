"""URL patterns of the sales office's daily work pages; included in the ``sales``
namespace next to ``sales/urls.py``."""

from django.urls import path

from . import views_work as views

urlpatterns = [
    path("today/", views.today, name="today"),
    path("customers/<int:customer_id>/follow-up/", views.followup_new, name="followup_new"),
    path("overdue/", views.overdue, name="overdue"),
    path("pool/", views.pool, name="pool"),
    path("pool/<int:link_id>/claim/", views.pool_claim_view, name="pool_claim"),
    path("spot-checks/", views.spotchecks, name="spotchecks"),
    path("handover/", views.handover, name="handover"),
]
