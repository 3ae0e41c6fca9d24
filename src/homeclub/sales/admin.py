from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import Attribution, SalesRuleSet, Visit
from .ruleset import RULE_FIELDS, ruleset_create


@admin.register(SalesRuleSet)
class SalesRuleSetAdmin(admin.ModelAdmin[SalesRuleSet]):
    """Rule sets are versioned: "add" writes the next version through ``ruleset_create``
    (audited); an existing version is never edited, so past decisions keep their rules."""

    list_display = ("project", "version", "valid_from", *RULE_FIELDS[:4], "visit_is_king")
    list_filter = ("project",)
    fields = ("project", "valid_from", *RULE_FIELDS, "note")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: SalesRuleSet, form: Any, change: bool) -> None:
        created = ruleset_create(
            actor=request.user,
            project=obj.project,
            valid_from=obj.valid_from,
            note=obj.note,
            **{f: getattr(obj, f) for f in RULE_FIELDS},
        )
        obj.pk = created.pk
        obj.version = created.version


@admin.register(Visit)
class VisitAdmin(admin.ModelAdmin[Visit]):
    list_display = ("visited_at", "project", "customer", "kind", "novelty", "consultant")
    list_filter = ("project", "kind", "novelty")
    raw_id_fields = ("customer", "consultant", "agent", "registered_by")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Attribution)
class AttributionAdmin(admin.ModelAdmin[Attribution]):
    list_display = ("decided_at", "project", "customer", "outcome", "winner_label", "is_current")
    list_filter = ("project", "outcome", "is_current")
    raw_id_fields = ("customer", "visit", "winner_user", "decided_by", "supersedes")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
