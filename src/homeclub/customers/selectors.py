"""Reads of the customer archive, always scoped to the viewer."""

from typing import Any

from django.db.models import Q, QuerySet

from homeclub.common.masking import mask_id_number, mask_phone
from homeclub.common.phones import national
from homeclub.org.roles import FULL_PII_ROLES
from homeclub.org.scoping import get_scoped, scope_of, scoped

from .models import Customer


def customer_list(
    *, viewer: Any, q: str = "", project_id: int | None = None, owner_id: int | None = None
) -> QuerySet[Customer]:
    qs = scoped(Customer.objects.select_related("project", "owner"), viewer)
    q = (q or "").strip()
    if q:
        digits = "".join(ch for ch in q if ch.isdigit())
        cond = Q(name__icontains=q)
        if len(digits) >= 4 and len(digits) == len(q):
            cond |= Q(mobile__endswith=digits)
        qs = qs.filter(cond)
    if project_id:
        qs = qs.filter(project_id=project_id)
    if owner_id:
        qs = qs.filter(owner_id=owner_id)
    return qs.order_by("-created_at", "-id")


def customer_get(*, viewer: Any, pk: Any) -> Customer:
    return get_scoped(Customer.objects.select_related("project", "owner"), viewer, pk=pk)


def sees_full_pii(viewer: Any) -> bool:
    return scope_of(viewer).role in FULL_PII_ROLES


def phone_for(viewer: Any, customer: Customer) -> str:
    """The phone as this viewer may see it: masked unless the role sees full numbers."""
    return national(customer.mobile) if sees_full_pii(viewer) else mask_phone(customer.mobile)


def id_number_for(viewer: Any, customer: Customer) -> str:
    if not customer.id_number:
        return ""
    return customer.id_number if sees_full_pii(viewer) else mask_id_number(customer.id_number)
