from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from homeclub.common.errors import DomainError
from homeclub.common.masking import mask_phone

from .models import Channel, MessageTemplate, OutboundMessage
from .services import message_cancel, message_retry


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ("code", "channel", "language", "subject", "is_active", "updated_at")
    list_filter = ("channel", "language", "is_active")
    search_fields = ("code", "subject", "body")


@admin.register(OutboundMessage)
class OutboundMessageAdmin(admin.ModelAdmin):
    """The outbox is a record: nothing is edited or deleted, only retried or cancelled."""

    list_display = (
        "id",
        "created_at",
        "channel",
        "purpose",
        "template_code",
        "masked_recipient",
        "status",
        "block_reason",
        "attempts",
        "next_attempt_at",
        "sent_at",
    )
    list_filter = ("status", "channel", "purpose", "template_code")
    search_fields = ("=id", "template_code", "provider_message_id", "dedup_key")
    date_hierarchy = "created_at"
    raw_id_fields = ("customer", "user", "created_by")
    actions = ("retry_now", "cancel")
    list_select_related = False

    @admin.display(description=_("recipient"))
    def masked_recipient(self, obj: OutboundMessage) -> str:
        if obj.channel == Channel.SMS:
            return mask_phone(obj.recipient)
        return obj.recipient

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # view only; the actions below are the only way to act on a row

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("messaging.change_outboundmessage")

    def _apply(
        self, request: HttpRequest, queryset: QuerySet[OutboundMessage], service: Any
    ) -> int:
        done = 0
        for message in queryset.order_by("pk"):
            try:
                service(actor=request.user, message=message)
            except DomainError as exc:
                self.message_user(request, f"#{message.pk}: {exc.message}", messages.WARNING)
            else:
                done += 1
        return done

    @admin.action(description=_("Retry now"), permissions=["resend"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[OutboundMessage]) -> None:
        done = self._apply(request, queryset, message_retry)
        self.message_user(
            request,
            ngettext("%(count)d message queued again.", "%(count)d messages queued again.", done)
            % {"count": done},
            messages.SUCCESS,
        )

    @admin.action(description=_("Cancel"), permissions=["resend"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[OutboundMessage]) -> None:
        done = self._apply(request, queryset, message_cancel)
        self.message_user(
            request,
            ngettext("%(count)d message cancelled.", "%(count)d messages cancelled.", done)
            % {"count": done},
            messages.SUCCESS,
        )
