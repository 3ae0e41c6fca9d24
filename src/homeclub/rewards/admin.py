"""Admin: read-only views of the catalogue. Stock, codes and orders change only through
the services (console pages and API), which keep the invariants and write the audit."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import Item, Order, VoucherCode


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Item)
class ItemAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "points_price", "yuan_value", "stock", "is_active")
    list_filter = ("kind", "is_active")
    search_fields = ("name",)


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ("id", "member", "item", "quantity", "points", "status", "created_at")
    list_filter = ("status",)
    list_select_related = ("member", "item")
    raw_id_fields = ("member", "item")


@admin.register(VoucherCode)
class VoucherCodeAdmin(ReadOnlyAdmin):
    list_display = ("code", "item", "status", "order", "issued_at")
    list_filter = ("status",)
    list_select_related = ("item",)
    search_fields = ("code",)
