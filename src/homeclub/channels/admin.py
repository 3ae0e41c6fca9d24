from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import Agency, AgencyContract, Agent, Report


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ("name", "licence_no", "contact_name", "active")
    list_filter = ("active",)
    search_fields = ("name", "licence_no")


@admin.register(AgencyContract)
class AgencyContractAdmin(admin.ModelAdmin):
    list_display = ("agency", "project", "starts_on", "ends_on", "active")
    list_filter = ("active", "project")
    raw_id_fields = ("agency",)


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("user", "agency", "is_crowd")
    list_filter = ("is_crowd",)
    raw_id_fields = ("user", "agency")
    exclude = ("mobile",)


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    """Read-only: reports change only through the services (the protection invariant)."""

    list_display = ("pk", "project", "agency", "agent", "status", "reason", "reported_at")
    list_filter = ("status", "project")
    exclude = ("phone_e164",)  # personal data is revealed through the audited console

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
