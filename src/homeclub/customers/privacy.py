"""PIPL: marketing consent per channel, a person's copy of their data, and erasure."""

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import _jsonable, audit_log
from homeclub.common.errors import Conflict, Forbidden, ValidationFailed
from homeclub.common.locking import lock_rows
from homeclub.common.models import AuditEvent
from homeclub.org.roles import FULL_PII_ROLES, REVEAL_ROLES
from homeclub.org.scoping import ensure_can_write, scope_of

from .merge import customer_relations
from .models import (
    ConsentChannel,
    ConsentRecord,
    ContactSource,
    Customer,
    CustomerPhone,
    CustomerProject,
    FamilyMember,
    HouseholdMember,
    MergeRecord,
    TimelineEvent,
)
from .timeline import timeline_append

# Roles that may export or erase a person's data on their request.
PRIVACY_ROLES = FULL_PII_ROLES | REVEAL_ROLES


def consent_record(
    *,
    actor: Any,
    customer: Customer,
    channel: str,
    granted: bool,
    source: str = ContactSource.CONSOLE,
    occurred_at: dt.datetime | None = None,
) -> ConsentRecord:
    """Append a grant or a withdrawal. The history is never edited: the latest record per
    channel is the current state, and the messaging gate reads it at send and delivery."""
    ensure_can_write(actor)
    errors: dict[str, list[str]] = {}
    if channel not in ConsentChannel.values:
        errors["channel"] = [gettext("Select a valid choice.")]
    if source not in ContactSource.values:
        errors["source"] = [gettext("Select a valid choice.")]
    when = occurred_at or timezone.now()
    if timezone.is_naive(when):
        errors["occurred_at"] = [gettext("Enter a date and time with a time zone.")]
    if errors:
        raise ValidationFailed(fields=errors)
    if customer.erased_at is not None:
        raise Conflict(_("This customer's personal data has been erased."), code="erased")
    with transaction.atomic():
        record = ConsentRecord.objects.create(
            customer=customer,
            channel=channel,
            granted=granted,
            source=source,
            occurred_at=when,
            recorded_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        audit_log(
            actor=actor,
            action="consent",
            target=customer,
            changes={"channel": channel, "granted": granted, "source": source},
        )
        label = ConsentChannel(channel).label
        timeline_append(
            customer=customer,
            kind=TimelineEvent.Kind.CONSENT,
            occurred_at=when,
            summary=(
                gettext("Marketing consent granted: %(channel)s")
                if granted
                else gettext("Marketing consent withdrawn: %(channel)s")
            )
            % {"channel": label},
            actor=actor,
            source=source,
            data={"channel": channel, "granted": granted},
        )
    return record


def _ensure_privacy_role(actor: Any) -> None:
    if scope_of(actor).role not in PRIVACY_ROLES:
        raise Forbidden(
            _("Your role may not export or erase personal data."), code="privacy_forbidden"
        )


def _fields(obj: Any, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        f.name: _jsonable(getattr(obj, f.attname))
        for f in obj._meta.concrete_fields
        if f.name not in exclude
    }


def customer_data_export(*, actor: Any, customer: Customer) -> dict[str, Any]:
    """A person's copy of their data (PIPL art. 45) as one JSON-able dict: the archive
    row, numbers, projects, household, family, consents and timeline. Audited."""
    _ensure_privacy_role(actor)
    data = {
        "customer": _fields(customer, exclude=("name_pinyin", "name_initials")),
        "tags": list(customer.tags.values_list("name", flat=True)),
        "phones": [_fields(p) for p in CustomerPhone.objects.filter(customer=customer)],
        "projects": [
            {**_fields(p), "project_name": p.project.name}
            for p in CustomerProject.objects.filter(customer=customer).select_related("project")
        ],
        "household": [_fields(m) for m in HouseholdMember.objects.filter(customer=customer)],
        "family": [_fields(m) for m in FamilyMember.objects.filter(customer=customer)],
        "consents": [_fields(c) for c in ConsentRecord.objects.filter(customer=customer)],
        "timeline": [
            _fields(e)
            for e in TimelineEvent.objects.filter(customer=customer).order_by("occurred_at", "id")
        ],
        "exported_at": timezone.now().isoformat(),
    }
    with transaction.atomic():
        audit_log(
            actor=actor,
            action=AuditEvent.Action.EXPORT,
            target=customer,
            changes={
                "kind": "personal_data",
                "sections": sorted(k for k in data if k != "exported_at"),
            },
        )
    return data


ERASED_NAME = "—"


# Other domains that keep a person's data outside the archive (channel reports name the
# person and their number) register a hook here from their AppConfig.ready; erasure calls
# each inside its transaction, before the phone rows go: hook(customer_id=, phones=).
_ERASURE_HOOKS: list[Callable[..., Any]] = []


def register_erasure_hook(hook: Callable[..., Any]) -> None:
    if hook not in _ERASURE_HOOKS:
        _ERASURE_HOOKS.append(hook)


def customer_erase(*, actor: Any, customer: Customer, reason: str = "") -> Customer:
    """Anonymise a person (PIPL art. 47): name, numbers, ID, addresses, profile, family,
    household links, tags, timeline texts and merge snapshots are wiped. The Customer row
    and every foreign key to it stay, so deal records other domains must keep still
    point at it. Consent history stays (it is the proof of what was allowed). Audited;
    cannot be undone."""
    _ensure_privacy_role(actor)
    ensure_can_write(actor)
    with transaction.atomic(durable=True):
        rows = lock_rows(Customer.objects.filter(pk=customer.pk))
        if not rows or rows[0].erased_at is not None:
            raise Conflict(_("This customer's personal data has been erased."), code="erased")
        current = rows[0]
        now = timezone.now()
        blank: dict[str, Any] = {}
        for f in Customer._meta.concrete_fields:
            if f.name in ("id", "created_at", "updated_at", "project", "owner", "stage"):
                continue
            if f.null:
                blank[f.attname] = None
            elif f.has_default():
                blank[f.attname] = f.get_default()
            elif f.get_internal_type() in ("CharField", "TextField"):
                blank[f.attname] = ""
        blank.update(
            name=ERASED_NAME,
            mobile=f"erased:{current.pk}",
            erased_at=now,
            updated_at=now,
        )
        phones = list(
            CustomerPhone.objects.filter(customer=current).values_list("number", flat=True)
        )
        if current.mobile not in phones:
            phones.append(current.mobile)
        for hook in _ERASURE_HOOKS:
            hook(customer_id=current.pk, phones=phones)
        Customer.objects.filter(pk=current.pk).update(**blank)
        CustomerPhone.objects.filter(customer=current).delete()
        FamilyMember.objects.filter(customer=current).delete()
        HouseholdMember.objects.filter(customer=current).delete()
        current.tags.clear()
        TimelineEvent.objects.filter(customer=current).update(summary="", data={}, source="")
        MergeRecord.objects.filter(keep=current).update(
            absorbed_name="", absorbed_snapshot={}, keep_before={}, dropped={}
        )
        audit_log(
            actor=actor,
            action="erase",
            target_type="customers.customer",
            target_id=str(current.pk),
            target_repr=f"#{current.pk}",
            changes={
                "reason": reason,
                "kept_relations": sorted(
                    m._meta.label_lower
                    for m, f in customer_relations()
                    if m._default_manager.filter(**{f.attname: current.pk}).exists()
                ),
            },
        )
        timeline_append(
            customer=current,
            kind=TimelineEvent.Kind.ERASED,
            occurred_at=now,
            summary=gettext("Personal data erased"),
            actor=actor,
        )
    current.refresh_from_db()
    return current
