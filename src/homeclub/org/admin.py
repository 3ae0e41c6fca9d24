from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from .models import BusinessUnit, OrgNode, User


@admin.register(OrgNode)
class OrgNodeAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "code", "parent", "city_name", "is_active")
    list_filter = ("kind", "is_active")
    search_fields = ("name", "code")
    readonly_fields = ("path",)


@admin.register(BusinessUnit)
class BusinessUnitAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "code", "group", "is_active")
    list_filter = ("kind",)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "name", "role", "is_active", "last_login")
    list_filter = ("role", "is_active")
    search_fields = ("username", "name", "mobile")
    filter_horizontal = ("org_nodes", "groups", "user_permissions")
    fieldsets = (
        *BaseUserAdmin.fieldsets,  # type: ignore[misc]
        (_("homeclub"), {"fields": ("name", "role", "mobile", "org_nodes", "language")}),
    )
