from django.urls import path

from . import views
from .urls_work import urlpatterns as work_urlpatterns

app_name = "sales"

urlpatterns = [
    path("reception/", views.reception, name="reception"),
    path("reception/lookup/", views.reception_lookup, name="reception_lookup"),
    path("visits/<int:pk>/", views.visit_detail, name="visit_detail"),
    path("customers/<int:pk>/panel/", views.customer_panel, name="customer_panel"),
    path("links/<int:link_id>/stage/", views.stage_update, name="stage_update"),
    path("links/<int:link_id>/assign/", views.assignment_change, name="assignment_change"),
    path("duty/", views.duty, name="duty"),
    path("arbitration/", views.arbitration, name="arbitration"),
    path("attributions/<int:pk>/", views.attribution_detail, name="attribution_detail"),
    path("funnel/", views.funnel_page, name="funnel"),
]

urlpatterns += work_urlpatterns
