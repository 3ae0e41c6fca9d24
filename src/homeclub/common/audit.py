"""``audit_log``: the one way to write an audit row.

It must run inside the transaction of the change it records, so the change and its
audit row commit or roll back together; outside a transaction it refuses.
"""

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Iterable
from typing import Any

from django.db import connection, models

from .context import current_request_meta
from .masking import mask_id_number, mask_phone
from .models import AuditEvent


def _jsonable(value: Any) -> Any:
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def snapshot(instance: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """Field values of ``instance`` (FKs as ids) in a JSON-able dict."""
    out: dict[str, Any] = {}
    for name in fields:
        field = instance._meta.get_field(name)
        attname = getattr(field, "attname", name)
        out[name] = _jsonable(getattr(instance, attname))
    return out


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """``{"field": [old, new]}`` for every field that changed."""
    return {k: [before.get(k), after.get(k)] for k in after if before.get(k) != after.get(k)}


# Personal data never enters the audit log in full: the log is read by more people than
# may see a phone number, and it cannot be erased.
_MASKERS = {"mobile": mask_phone, "phone": mask_phone, "id_number": mask_id_number}


def _redact(changes: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in changes.items():
        masker = _MASKERS.get(key)
        if masker is None:
            out[key] = value
        elif isinstance(value, list):
            out[key] = [masker(v) if isinstance(v, str) else v for v in value]
        else:
            out[key] = masker(value) if isinstance(value, str) else value
    return out


def object_type(instance: models.Model | type[models.Model]) -> str:
    return instance._meta.label_lower


def actor_fields(actor: Any) -> tuple[Any, str]:
    """(the user to record or None, the actor's label) as every audit row names them."""
    user = (
        actor if getattr(actor, "pk", None) and getattr(actor, "is_authenticated", False) else None
    )
    if user is not None:
        label = getattr(user, "name", "") or user.get_username()
    elif actor is not None and not hasattr(actor, "is_authenticated"):
        label = str(actor)
    else:
        label = "system"
    return user, label[:150]


# For a hot path that writes its audit row inside its own statement (a writable CTE):
# ``INSERT INTO <AUDIT_TABLE> (<AUDIT_COLUMNS>) VALUES (<placeholders>)`` with the values
# of ``audit_params`` — the same row ``audit_log`` would write, one round trip fewer.
AUDIT_TABLE = AuditEvent._meta.db_table
AUDIT_COLUMNS = (
    "created_at, actor_id, actor_label, action, object_type, object_id, object_repr,"
    " changes, ip, user_agent, request_id"
)


def audit_params(
    *,
    actor: Any,
    action: str,
    target_type: str,
    target_repr: str,
    changes: dict[str, Any],
    now: dt.datetime,
    prefix: str = "audit_",
) -> dict[str, Any]:
    """Named parameters (``%(audit_actor)s`` …) for an audit row written by hand-made SQL;
    the caller's SQL supplies the object id (known only inside the statement), and its
    statement must be the change's own: the row commits or rolls back with it."""
    user, label = actor_fields(actor)
    meta = current_request_meta()
    return {
        f"{prefix}now": now,
        f"{prefix}actor": getattr(user, "pk", None),
        f"{prefix}label": label,
        f"{prefix}action": action,
        f"{prefix}type": target_type,
        f"{prefix}repr": target_repr[:200],
        f"{prefix}changes": json.dumps(_redact(_jsonable(changes)), ensure_ascii=False),
        f"{prefix}ip": meta.ip,
        f"{prefix}ua": meta.user_agent,
        f"{prefix}rid": meta.request_id,
    }


def audit_log(
    *,
    actor: Any,
    action: str,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str = "",
    target_repr: str = "",
    changes: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an audit row. ``actor`` is a user or None (system)."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit_log must run inside the transaction of the change it records")
    meta = current_request_meta()
    if target is not None:
        target_type = target_type or object_type(target)
        target_id = target_id or str(target.pk)
        target_repr = target_repr or str(target)[:200]
    user, label = actor_fields(actor)
    return AuditEvent.objects.create(
        actor=user,
        actor_label=label,
        action=action,
        object_type=target_type,
        object_id=target_id,
        object_repr=target_repr[:200],
        changes=_redact(_jsonable(changes or {})),
        ip=meta.ip,
        user_agent=meta.user_agent,
        request_id=meta.request_id,
    )
