"""Log-ins, log-outs and failed log-ins go to the audit log."""

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from homeclub.common.audit import audit_log
from homeclub.common.models import AuditEvent


@receiver(user_logged_in)
def on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    with transaction.atomic():
        audit_log(actor=user, action=AuditEvent.Action.LOGIN, target=user)


@receiver(user_logged_out)
def on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        with transaction.atomic():
            audit_log(actor=user, action=AuditEvent.Action.LOGOUT, target=user)


@receiver(user_login_failed)
def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
) -> None:
    username = str(credentials.get("username", ""))[:150]
    with transaction.atomic():
        audit_log(
            actor=f"anonymous:{username}",
            action=AuditEvent.Action.LOGIN_FAILED,
            target_type="org.user",
            target_repr=username,
        )
