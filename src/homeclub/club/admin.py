from django.contrib import admin

from .models import Member


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ("number", "customer", "status", "joined_business_unit", "joined_at")
    list_filter = ("status", "joined_business_unit")
    search_fields = ("number",)
    raw_id_fields = ("customer", "user")
    readonly_fields = ("number", "card_token", "joined_at")
