"""Households and relatives: who lives with whom, who decides, who pays.

A household groups customers (``HouseholdMember``; a customer is in at most one household,
by a unique constraint). Its principal is the member with relation ``self``: the others'
relations are to that person. Relatives who are not customers are ``FamilyMember`` rows of
one customer. Either kind may be the one who decides purchases or holds the money; several
may (a couple deciding together).

Every write is audited. Names and birthdays of relatives never enter the audit log (it
cannot be erased and children's data is sensitive): it records which of them changed.
Adding the same person twice with the same relation returns the first row, so a client's
retry (with or without an Idempotency-Key) does not fail.
"""

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log, diff, snapshot
from homeclub.common.errors import Conflict, NotFound, ValidationFailed
from homeclub.common.models import AuditEvent
from homeclub.org.scoping import ensure_can_write

from ..models import CalendarKind, Customer, FamilyMember, Household, HouseholdMember, Relation

MEMBER_FIELDS = ("relation", "is_decider", "is_payer")
FAMILY_FIELDS = (
    "name",
    "relation",
    "birthday_calendar",
    "birth_date",
    "lunar_birth_month",
    "lunar_birth_day",
    "lunar_birth_leap",
    "school_entry_year",
    "note",
    "is_decider",
    "is_payer",
)
# Personal details of a relative: the audit log says they changed, not what they are.
_PRIVATE_FAMILY_FIELDS = frozenset(FAMILY_FIELDS) - {"relation", "is_decider", "is_payer"}


def _choice_error() -> list[str]:
    return [gettext("Select a valid choice.")]


def _conflict_other_household() -> Conflict:
    return Conflict(_("This customer already belongs to a household."), code="household_conflict")


def household_link(
    *,
    actor: Any,
    customer: Customer,
    other: Customer,
    relation: str,
    is_decider: bool = False,
    is_payer: bool = False,
) -> HouseholdMember:
    """Put ``other`` in ``customer``'s household (made on first use, ``customer`` its
    principal) with its relation to the principal. A customer is in at most one household
    (unique constraint): ``other`` in another household is a ``household_conflict``.
    ``other`` already in this household with the same relation is answered with its row
    (a retry); with another relation it is ``household_member_exists`` (change it with
    :func:`household_member_update`)."""
    ensure_can_write(actor)
    if customer.pk == other.pk:
        raise ValidationFailed(
            fields={"customer_id": [gettext("A customer cannot be their own relative.")]}
        )
    if relation not in Relation.values or relation == Relation.SELF:
        raise ValidationFailed(fields={"relation": _choice_error()})
    try:
        with transaction.atomic(durable=True):
            mine = (
                HouseholdMember.objects.filter(customer=customer)
                .select_related("household")
                .first()
            )
            existing = HouseholdMember.objects.filter(customer=other).first()
            if existing is not None:
                if mine is None or existing.household_id != mine.household_id:
                    raise _conflict_other_household()
                if (existing.relation, existing.is_decider, existing.is_payer) != (
                    relation,
                    is_decider,
                    is_payer,
                ):
                    raise Conflict(
                        _("This customer is already in the household; change the relation."),
                        code="household_member_exists",
                    )
                return existing
            if mine is None:
                household = Household.objects.create(name=customer.name)
                mine = HouseholdMember.objects.create(
                    household=household, customer=customer, relation=Relation.SELF
                )
                audit_log(
                    actor=actor,
                    action=AuditEvent.Action.CREATE,
                    target=household,
                    changes={"principal": customer.pk},
                )
            member = HouseholdMember.objects.create(
                household=mine.household,
                customer=other,
                relation=relation,
                is_decider=is_decider,
                is_payer=is_payer,
            )
            audit_log(
                actor=actor,
                action=AuditEvent.Action.CREATE,
                target=member,
                changes={
                    "household": mine.household_id,
                    "customer": other.pk,
                    "relation": relation,
                    "is_decider": is_decider,
                    "is_payer": is_payer,
                },
            )
    except IntegrityError as exc:
        # Lost a race: a concurrent call put ``other`` (or ``customer``) in a household.
        raise _conflict_other_household() from exc
    return member


def household_member_get(*, customer: Customer, pk: Any) -> HouseholdMember:
    """A member of ``customer``'s household (``customer`` itself included), else 404.
    The caller has already checked that the viewer may see ``customer``."""
    try:
        return (
            HouseholdMember.objects.select_related("customer")
            .filter(household__members__customer=customer)
            .get(pk=int(pk))
        )
    except (HouseholdMember.DoesNotExist, ValueError, TypeError, OverflowError) as exc:
        raise NotFound(
            _("This person is not in the customer's household."),
            code="household_member_not_found",
        ) from exc


def household_member_update(
    *,
    actor: Any,
    member: HouseholdMember,
    relation: str | None = None,
    is_decider: bool | None = None,
    is_payer: bool | None = None,
) -> HouseholdMember:
    """Change a member's relation, or whether they decide or pay. The principal's relation
    stays ``self``; nobody else can become ``self``."""
    ensure_can_write(actor)
    changes: dict[str, Any] = {}
    if relation is not None:
        is_principal = member.relation == Relation.SELF
        if relation not in Relation.values or (relation == Relation.SELF) != is_principal:
            raise ValidationFailed(fields={"relation": _choice_error()})
        changes["relation"] = relation
    if is_decider is not None:
        changes["is_decider"] = bool(is_decider)
    if is_payer is not None:
        changes["is_payer"] = bool(is_payer)
    with transaction.atomic(durable=True):
        before = snapshot(member, MEMBER_FIELDS)
        for key, value in changes.items():
            setattr(member, key, value)
        changed = diff(before, snapshot(member, MEMBER_FIELDS))
        if changed:
            if not HouseholdMember.objects.filter(pk=member.pk).update(**changes):
                raise NotFound(code="household_member_not_found")
            audit_log(actor=actor, action=AuditEvent.Action.UPDATE, target=member, changes=changed)
    return member


def household_member_remove(*, actor: Any, member: HouseholdMember) -> None:
    """Take a member out of the household. The principal leaves only last: while others
    remain it is ``household_principal``. A household left with one member is dissolved
    (a household of one says nothing)."""
    ensure_can_write(actor)
    with transaction.atomic(durable=True):
        others = HouseholdMember.objects.filter(household_id=member.household_id).exclude(
            pk=member.pk
        )
        if member.relation == Relation.SELF and others.exclude(relation=Relation.SELF).exists():
            raise Conflict(
                _("Remove the other members first: their relations are to this customer."),
                code="household_principal",
            )
        if not HouseholdMember.objects.filter(pk=member.pk).delete()[0]:
            raise NotFound(code="household_member_not_found")
        audit_log(
            actor=actor,
            action=AuditEvent.Action.DELETE,
            target=member,
            changes={"household": member.household_id, "customer": member.customer_id},
        )
        if others.count() <= 1:
            others.delete()
            Household.objects.filter(pk=member.household_id).delete()


def _clean_family(values: dict[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
    out = dict(values)
    if "relation" in out and (out["relation"] not in Relation.values or out["relation"] == "self"):
        errors["relation"] = _choice_error()
    if "birthday_calendar" in out and out["birthday_calendar"] not in CalendarKind.values:
        errors["birthday_calendar"] = _choice_error()
    month, day = out.get("lunar_birth_month"), out.get("lunar_birth_day")
    if month is not None and not 1 <= month <= 12:
        errors["lunar_birth_month"] = [gettext("Enter a lunar month from 1 to 12.")]
    if day is not None and not 1 <= day <= 30:
        errors["lunar_birth_day"] = [gettext("Enter a lunar day from 1 to 30.")]
    if "name" in out:
        out["name"] = (out["name"] or "").strip()[:60]
    if "note" in out:
        out["note"] = (out["note"] or "")[:200]
    for flag in ("lunar_birth_leap", "is_decider", "is_payer"):
        if flag in out:
            out[flag] = bool(out[flag])
    return out


def _family_changes(changed: dict[str, Any]) -> dict[str, Any]:
    return {k: (["***", "***"] if k in _PRIVATE_FAMILY_FIELDS else v) for k, v in changed.items()}


def family_member_add(
    *,
    actor: Any,
    customer: Customer,
    name: str,
    relation: str,
    birthday_calendar: str = "solar",
    birth_date: dt.date | None = None,
    lunar_birth_month: int | None = None,
    lunar_birth_day: int | None = None,
    lunar_birth_leap: bool = False,
    school_entry_year: int | None = None,
    note: str = "",
    is_decider: bool = False,
    is_payer: bool = False,
) -> FamilyMember:
    """A relative who is not a customer (children's data is sensitive: see selectors)."""
    ensure_can_write(actor)
    errors: dict[str, list[str]] = {}
    values = _clean_family(
        {
            "name": name,
            "relation": relation,
            "birthday_calendar": birthday_calendar,
            "birth_date": birth_date,
            "lunar_birth_month": lunar_birth_month,
            "lunar_birth_day": lunar_birth_day,
            "lunar_birth_leap": lunar_birth_leap,
            "school_entry_year": school_entry_year,
            "note": note,
            "is_decider": is_decider,
            "is_payer": is_payer,
        },
        errors,
    )
    if errors:
        raise ValidationFailed(fields=errors)
    with transaction.atomic(durable=True):
        member = FamilyMember.objects.create(customer=customer, **values)
        audit_log(
            actor=actor,
            action=AuditEvent.Action.CREATE,
            target=member,
            target_repr=str(member.get_relation_display()),
            changes={
                "customer": customer.pk,
                "relation": relation,
                "is_decider": values["is_decider"],
                "is_payer": values["is_payer"],
            },
        )
    return member


def family_member_get(*, customer: Customer, pk: Any) -> FamilyMember:
    """A relative of ``customer``, else 404 (the caller checked ``customer``'s scope)."""
    try:
        return FamilyMember.objects.get(customer=customer, pk=int(pk))
    except (FamilyMember.DoesNotExist, ValueError, TypeError, OverflowError) as exc:
        raise NotFound(
            _("This relative is not recorded for the customer."), code="family_member_not_found"
        ) from exc


def family_member_update(*, actor: Any, member: FamilyMember, **changes: Any) -> FamilyMember:
    """Change a relative's fields (any of ``FAMILY_FIELDS``)."""
    ensure_can_write(actor)
    unknown = set(changes) - set(FAMILY_FIELDS)
    if unknown:
        raise ValidationFailed(
            fields={k: [gettext("This field cannot be changed.")] for k in sorted(unknown)}
        )
    errors: dict[str, list[str]] = {}
    values = _clean_family(changes, errors)
    if errors:
        raise ValidationFailed(fields=errors)
    with transaction.atomic(durable=True):
        before = snapshot(member, FAMILY_FIELDS)
        for key, value in values.items():
            setattr(member, key, value)
        changed = diff(before, snapshot(member, FAMILY_FIELDS))
        if changed:
            if not FamilyMember.objects.filter(pk=member.pk).update(**values):
                raise NotFound(code="family_member_not_found")
            audit_log(
                actor=actor,
                action=AuditEvent.Action.UPDATE,
                target=member,
                target_repr=str(member.get_relation_display()),
                changes=_family_changes(changed),
            )
    return member


def family_member_remove(*, actor: Any, member: FamilyMember) -> None:
    ensure_can_write(actor)
    with transaction.atomic(durable=True):
        if not FamilyMember.objects.filter(pk=member.pk).delete()[0]:
            raise NotFound(code="family_member_not_found")
        audit_log(
            actor=actor,
            action=AuditEvent.Action.DELETE,
            target=member,
            target_repr=str(member.get_relation_display()),
            changes={"customer": member.customer_id, "relation": member.relation},
        )
