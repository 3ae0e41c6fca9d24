"""Reads of a customer's household, relatives and tags, as the viewer may see them.

The caller has fetched the customer through a scoped selector (``customer_get``): these
functions add what hangs on it. Another customer in the household is named only when the
viewer may see that customer too (the family tie is shown, the person is not); a child's
name and dates only to roles that see sensitive data (PIPL art. 28)."""

import datetime as dt
from typing import Any

from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.utils import timezone

from homeclub.org.scoping import scoped

from .birthdays import next_birthday_of
from .models import Customer, FamilyMember, HouseholdMember, Relation, Tag
from .selectors import HIDDEN, sees_full_pii


def household_for(
    *, viewer: Any, customer: Customer, today: dt.date | None = None
) -> dict[str, Any]:
    """``{"household_id", "members": [...], "family": [...]}``: at most three queries
    (members with their customers, which of them the viewer sees, relatives)."""
    today = today or timezone.localdate()
    rows = list(
        HouseholdMember.objects.filter(household__members__customer=customer)
        .select_related("customer")
        .annotate(
            principal_first=Case(
                When(relation=Relation.SELF, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("principal_first", "id")
    )
    others = [r.customer_id for r in rows if r.customer_id != customer.pk]
    visible: set[int] = set()
    if others:
        visible = set(
            scoped(Customer.objects.filter(pk__in=others), viewer).values_list("pk", flat=True)
        )
    members = []
    for r in rows:
        is_self = r.customer_id == customer.pk
        shown = is_self or r.customer_id in visible
        members.append(
            {
                "id": r.pk,
                "customer_id": r.customer_id if shown else None,
                "name": r.customer.name if shown else HIDDEN,
                "relation": r.relation,
                "relation_label": r.get_relation_display(),
                "is_decider": r.is_decider,
                "is_payer": r.is_payer,
                "is_self": is_self,
                "in_scope": shown,
                "next_birthday": next_birthday_of(r.customer, today) if shown else None,
            }
        )
    return {
        "household_id": rows[0].household_id if rows else None,
        "members": members,
        "family": family_of(viewer=viewer, customer=customer, today=today),
    }


def family_of(
    *, viewer: Any, customer: Customer, today: dt.date | None = None
) -> list[dict[str, Any]]:
    """Relatives who are not customers, with their next birthday; one query."""
    today = today or timezone.localdate()
    full = sees_full_pii(viewer)
    out = []
    for m in FamilyMember.objects.filter(customer=customer).order_by("id"):
        hide = m.relation == Relation.CHILD and not full
        out.append(
            {
                "id": m.pk,
                "name": HIDDEN if hide and m.name else m.name,
                "relation": m.relation,
                "relation_label": m.get_relation_display(),
                "birthday_calendar": m.birthday_calendar,
                "birth_date": None if hide else m.birth_date,
                "lunar_birth_month": None if hide else m.lunar_birth_month,
                "lunar_birth_day": None if hide else m.lunar_birth_day,
                "lunar_birth_leap": False if hide else m.lunar_birth_leap,
                "school_entry_year": None if hide else m.school_entry_year,
                "note": "" if hide else m.note,
                "is_decider": m.is_decider,
                "is_payer": m.is_payer,
                "hidden": hide,
                "next_birthday": None if hide else next_birthday_of(m, today),
            }
        )
    return out


def tags_of(customer: Customer) -> QuerySet[Tag]:
    return customer.tags.order_by("name")


def tag_names(limit: int = 200) -> list[str]:
    """Tags in use, for suggestions while typing."""
    return list(Tag.objects.order_by("name").values_list("name", flat=True)[:limit])
