"""Reads behind the sales office's deal pages (selectors) and the deals export: the unit
page, the approval queue, the deals list with its totals and XLSX, pledges, and the
managers' inventory page. Views parse the request, call these or a service, and render;
writes stay in ``services.py``.

Every function returns what its page renders with ``select_related`` already applied;
the pages' query counts are pinned in tests/inventory/test_deal_views.py.
"""

import datetime as dt
import io
from collections import defaultdict
from decimal import Decimal
from typing import Any

import xlsxwriter
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from homeclub.common.audit import audit_log
from homeclub.common.errors import Forbidden, NotFound
from homeclub.common.models import AuditEvent
from homeclub.common.money import ZERO, yuan
from homeclub.customers.selectors import customer_list, phone_for
from homeclub.org.models import OrgNode, User
from homeclub.org.roles import EXPORT_ROW_LIMITS
from homeclub.org.scoping import get_scoped, scope_of, scoped

from .models import (
    Building,
    Contract,
    PaymentKind,
    Pledge,
    PledgeStatus,
    PriceList,
    Subscription,
    SubscriptionStatus,
    Unit,
    UnitStatus,
)
from .selectors import LOCAL_TZ, current_prices, unit_price_current
from .services import MANAGER_ROLES, discount_limit

SS = SubscriptionStatus
S = UnitStatus
DEALS_SHOWN = 200
HISTORY_SHOWN = 50
CUSTOMER_CHOICES = 20
ACTION_LABELS = {
    "inventory.unit.create": gettext_lazy("Unit created"),
    "inventory.release": gettext_lazy("Released for sale"),
    "inventory.subscription.create": gettext_lazy("Subscribed"),
    "inventory.subscription.approve": gettext_lazy("Discount approved"),
    "inventory.subscription.reject": gettext_lazy("Discount rejected"),
    "inventory.subscription.cancel": gettext_lazy("Deal cancelled"),
    "inventory.subscription.swap": gettext_lazy("Unit swapped"),
    "inventory.subscription.rename": gettext_lazy("Buyer changed"),
    "inventory.contract.sign": gettext_lazy("Contract signed"),
    "inventory.payment.record": gettext_lazy("Payment recorded"),
}


def is_manager(user: Any) -> bool:
    return scope_of(user).role in MANAGER_ROLES


def unit_get(*, viewer: Any, unit_id: int) -> Unit:
    """A unit of a project the viewer works in (consultants included), else NotFound."""
    unit = (
        Unit.objects.select_related(
            "building",
            "project",
            "subscription__customer",
            "subscription__consultant",
            "subscription__approved_by",
            "subscription__contract",
        )
        .filter(pk=unit_id)
        .first()
    )
    if (
        unit is None
        or not unit.project.is_active
        or not scope_of(viewer).sees_project(unit.project_id)
    ):
        raise NotFound(code="unit_not_found")
    return unit


def subscription_get(*, viewer: Any, pk: int) -> Subscription:
    """A deal the viewer may act on: a consultant only their own (scoped)."""
    return get_scoped(
        Subscription.objects.select_related("unit", "customer", "project"), viewer, pk=pk
    )


def contract_get(*, viewer: Any, pk: int) -> Contract:
    return get_scoped(Contract.objects.select_related("subscription"), viewer, pk=pk)


def contract_of(sub: Subscription | None) -> Contract | None:
    if sub is None:
        return None
    try:
        return sub.contract
    except ObjectDoesNotExist:
        return None


# --- the unit page ----------------------------------------------------------------------


def unit_page(*, viewer: Any, unit: Unit) -> dict[str, Any]:
    """Everything the unit page shows: facts, price now, the deal the viewer may see
    with its contract and payments, past deals, history, and which actions its state
    allows the viewer."""
    scope = scope_of(viewer)
    now = timezone.now()
    list_price, item = unit_price_current(unit=unit, at=now)
    unit_price = item.unit_price if item is not None else unit.unit_price
    limit = discount_limit(unit.project_id)
    sub = unit.subscription
    mine = sub is not None and (not scope.own_only or sub.consultant_id == viewer.pk)
    contract = contract_of(sub) if mine else None
    payments = list(contract.payments.all()) if contract is not None else []
    past = list(
        Subscription.objects.filter(unit=unit)
        .select_related("customer", "consultant", "contract")
        .order_by("-subscribed_at", "-id")[:HISTORY_SHOWN]
    )
    subject = Q(object_type="inventory.unit", object_id=str(unit.pk))
    sub_ids = [str(p.pk) for p in past]
    contract_ids = [str(c.pk) for c in (contract_of(p) for p in past) if c is not None]
    if sub_ids:
        subject |= Q(object_type="inventory.subscription", object_id__in=sub_ids)
    if contract_ids:
        subject |= Q(object_type="inventory.contract", object_id__in=contract_ids)
    history = list(
        AuditEvent.objects.filter(subject).order_by("-created_at", "-id")[:HISTORY_SHOWN]
    )
    status_labels = dict(S.choices)
    writer = scope.can_write
    live = sub.status if sub is not None and mine else ""
    can = {
        "subscribe": writer and unit.status == S.AVAILABLE and unit.opening_id is None,
        "approve": writer and live == SS.PENDING_APPROVAL and scope.role in MANAGER_ROLES,
        "sign": writer and live == SS.ACTIVE,
        "pay": writer and live == SS.SIGNED and contract is not None,
        "cancel": writer and live in (SS.PENDING_APPROVAL, SS.ACTIVE, SS.SIGNED),
        "swap": writer and live == SS.ACTIVE,
        "rename": writer and live in (SS.ACTIVE, SS.SIGNED),
    }
    return {
        "unit": unit,
        "project": unit.project,
        "list_price": list_price,
        "unit_price": unit_price,
        "price_version": item.price_list_id if item is not None else None,
        "limit_pct": f"{(limit * 100).quantize(Decimal('0.01'))}%",
        "floor_price": yuan(list_price * (1 - limit)),
        "needs_approval_below": scope.role not in MANAGER_ROLES,
        "sub": sub if mine else None,
        "other_deal": sub is not None and not mine,
        "customer_phone": phone_for(viewer, sub.customer) if sub is not None and mine else "",
        "contract": contract,
        "payments": payments,
        "past": [
            {
                "row": p,
                "customer": p.customer.name
                if not scope.own_only or p.consultant_id == viewer.pk
                else "—",
            }
            for p in past
        ],
        "history": [
            {
                "row": h,
                "label": ACTION_LABELS.get(h.action, h.action),
                "moved": [str(status_labels.get(v, v)) for v in h.changes.get("status", [])],
            }
            for h in history
        ],
        "can": can,
        "payment_kinds": PaymentKind.choices,
        "today": timezone.localdate().isoformat(),
    }


def pledges_usable(
    *, viewer: Any, project_id: int, customer_ids: list[int]
) -> dict[int, list[Pledge]]:
    """customer id → that customer's pledges in the project that can still take a unit
    (active, ``units_taken < max_units``), as the viewer may see them; one query."""
    out: dict[int, list[Pledge]] = defaultdict(list)
    if not customer_ids:
        return out
    for p in (
        scoped(Pledge.objects.all(), viewer)
        .filter(
            project_id=project_id,
            customer_id__in=customer_ids,
            status=PledgeStatus.ACTIVE,
            units_taken__lt=F("max_units"),
        )
        .order_by("number")
    ):
        out[p.customer_id].append(p)
    return out


def customer_choices_rows(
    *, viewer: Any, project: OrgNode, q: str, with_pledges: bool
) -> list[dict[str, Any]]:
    """Customers of the project matching ``q`` (name, pinyin or phone tail; two
    characters at least) to choose from, phones as the viewer sees them; with
    ``with_pledges`` each carries its usable pledges (认筹转认购)."""
    if len(q) < 2:
        return []
    customers = list(customer_list(viewer=viewer, q=q, project_id=project.pk)[:CUSTOMER_CHOICES])
    pledges = (
        pledges_usable(viewer=viewer, project_id=project.pk, customer_ids=[c.pk for c in customers])
        if with_pledges
        else {}
    )
    return [
        {
            "id": c.pk,
            "name": c.name,
            "phone": phone_for(viewer, c),
            "pledges": pledges.get(c.pk, []),
        }
        for c in customers
    ]


def pledge_get(*, viewer: Any, pk: int) -> Pledge | None:
    return scoped(Pledge.objects.all(), viewer).filter(pk=pk).first()


# --- approval queue ---------------------------------------------------------------------


def approval_queue(*, viewer: Any) -> list[dict[str, Any]]:
    """Subscriptions whose discount waits for approval, oldest first, with the discount
    as a percentage and the hold's deadline."""
    rows = list(
        scoped(Subscription.objects.all(), viewer)
        .filter(status=SS.PENDING_APPROVAL)
        .select_related("unit", "unit__building", "customer", "consultant", "project")
        .order_by("subscribed_at", "id")[:DEALS_SHOWN]
    )
    return [
        {
            "sub": s,
            "phone": phone_for(viewer, s.customer),
            "pct": (s.discount * 100 / s.list_price).quantize(Decimal("0.01"))
            if s.list_price
            else Decimal("0.00"),
            "expires": s.unit.hold_expires_at,
        }
        for s in rows
    ]


# --- deals list and export --------------------------------------------------------------


def deal_list(
    *,
    viewer: Any,
    project: OrgNode,
    status: str = "",
    consultant_id: int | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> QuerySet[Subscription]:
    """The project's subscriptions (and their contracts) the viewer may see, filtered;
    dates are business days in Asia/Shanghai."""
    qs = scoped(Subscription.objects.all(), viewer).filter(project=project)
    if status in SS.values:
        qs = qs.filter(status=status)
    if consultant_id:
        qs = qs.filter(consultant_id=consultant_id)
    if date_from:
        qs = qs.filter(
            subscribed_at__gte=dt.datetime.combine(date_from, dt.time.min, tzinfo=LOCAL_TZ)
        )
    if date_to:
        qs = qs.filter(
            subscribed_at__lt=dt.datetime.combine(
                date_to + dt.timedelta(days=1), dt.time.min, tzinfo=LOCAL_TZ
            )
        )
    return qs.select_related(
        "unit", "unit__building", "customer", "consultant", "contract"
    ).order_by("-subscribed_at", "-id")


def deal_totals(qs: QuerySet[Subscription]) -> dict[str, Any]:
    """Count, agreed amount and collected amount of the filtered deals, in one query."""
    totals = qs.order_by().aggregate(
        count=Count("pk"), agreed=Sum("agreed_price"), collected=Sum("contract__paid_total")
    )
    return {
        "count": totals["count"],
        "agreed": totals["agreed"] or ZERO,
        "collected": totals["collected"] or ZERO,
    }


def deals_page(*, viewer: Any, project: OrgNode, **filters: Any) -> dict[str, Any]:
    """The deals list: the first DEALS_SHOWN rows, the totals of all the filtered ones,
    and the consultants to filter by."""
    qs = deal_list(viewer=viewer, project=project, **filters)
    rows = list(qs[:DEALS_SHOWN])
    consultants = list(
        User.objects.filter(inventory_subscriptions__project=project)
        .distinct()
        .order_by("name", "pk")
    )
    return {
        "project": project,
        "rows": [
            {"sub": s, "phone": phone_for(viewer, s.customer), "contract": contract_of(s)}
            for s in rows
        ],
        "shown": DEALS_SHOWN,
        "totals": deal_totals(qs),
        "statuses": SS.choices,
        "consultants": consultants,
        "may_export": EXPORT_ROW_LIMITS.get(scope_of(viewer).role, 0) > 0,
    }


EXPORT_COLUMNS = (
    gettext_lazy("Unit"),
    gettext_lazy("Building"),
    gettext_lazy("Customer"),
    gettext_lazy("Phone"),
    gettext_lazy("Consultant"),
    gettext_lazy("Status"),
    gettext_lazy("Subscribed at"),
    gettext_lazy("List price"),
    gettext_lazy("Agreed price"),
    gettext_lazy("Discount"),
    gettext_lazy("Deposit"),
    gettext_lazy("Contract number"),
    gettext_lazy("Contract price"),
    gettext_lazy("Collected"),
)


def deals_export_xlsx(*, actor: Any, project: OrgNode, **filters: Any) -> tuple[bytes, int]:
    """The viewer's filtered deals as XLSX, phones as the viewer sees them; audited.
    Refused (not truncated) beyond the role's row limit."""
    limit = EXPORT_ROW_LIMITS.get(scope_of(actor).role, 0)
    if limit <= 0:
        raise Forbidden(_("Your role may not export data."), code="export_forbidden")
    qs = deal_list(viewer=actor, project=project, **filters)
    count = qs.count()
    if count > limit:
        raise Forbidden(
            _("The export has %(count)s rows; your role may export at most %(limit)s.")
            % {"count": count, "limit": limit},
            code="export_too_large",
        )
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet(_("Deals"))
    sheet.write_row(0, 0, [str(c) for c in EXPORT_COLUMNS])
    labels = dict(SS.choices)
    for row, s in enumerate(qs.iterator(chunk_size=2000), start=1):
        contract = contract_of(s)
        sheet.write_row(
            row,
            0,
            [
                s.unit.number,
                s.unit.building.name,
                s.customer.name,
                phone_for(actor, s.customer),
                (s.consultant.name or s.consultant.username) if s.consultant else "",
                str(labels.get(s.status, s.status)),
                s.subscribed_at.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M"),
                str(s.list_price),
                str(s.agreed_price),
                str(s.discount),
                str(s.deposit),
                contract.number if contract else "",
                str(contract.price) if contract else "",
                str(contract.paid_total) if contract else "",
            ],
        )
    book.close()
    with transaction.atomic():
        audit_log(
            actor=actor,
            action=AuditEvent.Action.EXPORT,
            target_type="inventory.subscription",
            target_repr=_("Deals list"),
            changes={
                "what": "inventory.deals",
                "rows": count,
                "project_id": project.pk,
                "filters": {k: v for k, v in filters.items() if v},
            },
        )
    return buffer.getvalue(), count


# --- pledges and the managers' inventory page -------------------------------------------


def pledge_rows(*, viewer: Any, project: OrgNode) -> list[dict[str, Any]]:
    """The project's latest pledges the viewer may see, with phones as they see them."""
    rows = list(
        scoped(Pledge.objects.all(), viewer)
        .filter(project=project)
        .select_related("customer", "consultant")
        .order_by("-number")[:DEALS_SHOWN]
    )
    return [{"p": p, "phone": phone_for(viewer, p.customer)} for p in rows]


def inventory_admin_page(*, project: OrgNode) -> dict[str, Any]:
    """Buildings with unit counts, every unit with its current list price, and the last
    20 price list versions."""
    units = list(
        Unit.objects.filter(project=project)
        .select_related("building")
        .order_by("building__sort", "building__name", "-floor", "number")
    )
    prices = current_prices(project_id=project.pk, at=timezone.now())
    buildings = list(
        Building.objects.filter(project=project)
        .annotate(units_count=Count("units"))
        .order_by("sort", "name")
    )
    price_lists = list(
        PriceList.objects.filter(project=project)
        .annotate(items_count=Count("items"))
        .order_by("-effective_at", "-version")[:20]
    )
    return {
        "project": project,
        "buildings": buildings,
        "units": [
            {"u": u, "price": prices.get(u.pk, (u.list_price, u.unit_price))[0]} for u in units
        ],
        "price_lists": price_lists,
    }


def prices_moved_by(
    *, project: OrgNode, pct: Decimal, at: dt.datetime
) -> dict[int, tuple[Decimal, Decimal]]:
    """unit id → (list price, unit price): every unit's prices in force at ``at``
    moved by ``pct`` percent — the body of a new price list version."""
    current = current_prices(project_id=project.pk, at=at)
    factor = 1 + pct / 100
    prices: dict[int, tuple[Decimal, Decimal]] = {}
    for uid, lp, up in Unit.objects.filter(project=project).values_list(
        "pk", "list_price", "unit_price"
    ):
        lp, up = current.get(uid, (lp, up))
        prices[uid] = (yuan(lp * factor), yuan(up * factor))
    return prices


def unit_ids_by_number(*, project: OrgNode, numbers: list[str]) -> dict[str, int]:
    return dict(
        Unit.objects.filter(project=project, number__in=numbers).values_list("number", "pk")
    )
