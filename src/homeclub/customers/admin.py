from django.contrib import admin

from .models import Customer


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "owner", "created_at")
    list_filter = ("project",)
    search_fields = ("name",)
    raw_id_fields = ("owner",)
    exclude = ("mobile", "id_number")  # personal data is revealed through the audited console
