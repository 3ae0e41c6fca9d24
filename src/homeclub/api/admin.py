from django.contrib import admin

from .models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "hint", "org_node", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("hint", "last_used_at")
    exclude = ("token_hash",)
