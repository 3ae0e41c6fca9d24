"""Console URLs of the archive's own pages: the 360 page's household and tag panels.

Included at the site root beside the console's URLs (``homeclub/urls.py``), namespace
``customers``."""

from django.urls import path

from . import views

app_name = "customers"

urlpatterns = [
    path(
        "customers/<int:pk>/household/",
        views.customer_household_panel,
        name="household_panel",
    ),
    path("customers/<int:pk>/tags/", views.customer_tags_panel, name="tags_panel"),
]
