from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import Account, EarnRate, Entry, PointValue


@admin.register(EarnRate)
class EarnRateAdmin(admin.ModelAdmin):
    list_display = ("business_unit", "points_per_unit", "valid_from", "created_by")
    list_filter = ("business_unit",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a new rate is a new row; past entries keep theirs


@admin.register(PointValue)
class PointValueAdmin(admin.ModelAdmin):
    list_display = ("yuan_per_point", "valid_from", "created_by")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("member", "balance", "pending", "debt")
    readonly_fields = ("member", "balance", "pending", "debt")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Entry)
class EntryAdmin(admin.ModelAdmin):
    list_display = ("id", "account", "kind", "points", "balance_after", "source_type", "source_id")
    list_filter = ("kind",)
    search_fields = ("source_id",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
