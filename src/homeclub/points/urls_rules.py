"""Earning-rule pages; the lead includes these into the ``points`` namespace:
``urlpatterns += urls_rules.urlpatterns`` in ``points/urls.py``."""

from django.urls import path

from . import views_rules

urlpatterns = [
    path("rules/", views_rules.rules, name="rules"),
    path("rules/new/", views_rules.rule_add, name="rule_add"),
]
