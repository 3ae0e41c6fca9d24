"""Writes of the redemption catalogue (积分商城).

Invariants kept here (see models.py for the constraints behind them):

- **stock never below zero**: an order takes stock with ``UPDATE … SET stock = stock - n
  WHERE stock >= n`` and checks the row count; a voucher order also takes ``n`` unused
  codes (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, then a conditional UPDATE on
  ``status='available'``), so two orders never get the same code;
- **per-member limit**: a conditional UPDATE on the member's tally row;
- **points and stock move together**. The ledger's ``points_redeem`` owns its own
  (durable) transaction, so it cannot share one with the stock decrement. An order is
  therefore placed in three short transactions, with a compensation that leaves no trace:

  1. *reserve*: take the stock, the tally and the codes, insert the order as
     ``pending`` (commit);
  2. *pay*: ``points_redeem(source_type="rewards.order", source_id=order id)`` —
     idempotent per source;
  3. *confirm*: ``pending → placed`` (a voucher: ``→ fulfilled``, codes issued), audit
     row and timeline entry in the same transaction.

  If the ledger refuses (not enough points, membership not active) the reservation is
  undone in one transaction — stock, tally and codes back, the pending order deleted —
  and the caller gets the ledger's error: nothing changed. If the process dies between
  the steps, the order stays ``pending``; the periodic ``orders_settle`` cancels pending
  orders older than ``STALE_PENDING`` (stock back, and the points back if step 2 had
  committed). A placement that outlives that and reaches step 3 finds its order no
  longer pending, gives its points back itself and reports ``order_interrupted``.
  Losers of a stock race fail in step 1 and never touch the ledger.

- **cancellation refunds exactly**: the order is cancelled (stock, tally and unissued
  codes back; issued codes voided, never handed out twice) in one transaction, then
  ``points_redeem_cancel`` gives the points back to exactly the lots they came from and
  ``refunded_at`` is set. Should that second step fail, ``orders_settle`` retries it
  (the ledger's cancellation is idempotent).

Lock order everywhere: order row, item row, tally row, code rows.
"""

import contextlib
import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.club.models import Member
from homeclub.club.selectors import member_get
from homeclub.common.audit import audit_log
from homeclub.common.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from homeclub.common.locking import lock_rows
from homeclub.customers.models import TimelineEvent
from homeclub.customers.timeline import timeline_append
from homeclub.org.roles import Role
from homeclub.org.scoping import ensure_can_write, get_scoped, scope_of
from homeclub.points.selectors import point_value_at
from homeclub.points.services import points_redeem, points_redeem_cancel

from . import rules
from .catalogue import aware_now, ensure_manager, field_error, user_or_none, whole_number
from .models import CodeStatus, Item, ItemKind, MemberTally, Order, OrderStatus, VoucherCode
from .selectors import is_manager, orderable_q

logger = logging.getLogger(__name__)

SOURCE_TYPE = "rewards.order"
STALE_PENDING = dt.timedelta(minutes=10)
REFUND_RETRY_AFTER = dt.timedelta(minutes=1)


# --- orders --------------------------------------------------------------------------------


def _ensure_may_order_for(actor: Any, member: Member) -> None:
    """A member orders for their own membership; a club operator for a member in scope;
    ``None`` is the system (an integration acting on its own authority)."""
    if actor is None:
        return
    ensure_can_write(actor)
    scope = scope_of(actor)
    if scope.external:
        if scope.role != Role.MEMBER or member.user_id != actor.pk:
            raise NotFound(_("Member not found."), code="member_not_found")
        return
    if not is_manager(actor):
        raise Forbidden(
            _("Only club operators place orders for members."), code="not_club_operator"
        )
    member_get(viewer=actor, pk=member.pk)  # out of scope: not found


def _clean_key(client_key: str) -> str:
    key = (client_key or "").strip()
    if len(key) > 64:
        # A long key from a client still identifies the order: keep its digest.
        key = hashlib.sha256(key.encode()).hexdigest()
    return key


def _order_by_key(member_id: int, client_key: str) -> Order | None:
    return (
        Order.objects.filter(member_id=member_id, client_key=client_key)
        .select_related("item")
        .first()
    )


def _same_or_conflict(order: Order, item: Item, quantity: int) -> Order:
    if order.item_id != item.pk or order.quantity != quantity:
        raise Conflict(
            _("This order key was already used for another order."), code="client_key_reused"
        )
    return order


def _ensure_orderable(item: Item, now: dt.datetime) -> None:
    if not Item.objects.filter(orderable_q(now), pk=item.pk).exists():
        raise Conflict(_("This item cannot be ordered now."), code="item_unavailable")


def _take_codes(item_id: int, order_id: int, quantity: int) -> None:
    """Reserve ``quantity`` unused codes for the order. On PostgreSQL the candidates are
    locked with SKIP LOCKED, so concurrent orders pick different rows instead of
    queueing; the conditional UPDATE is what guarantees a code goes to one order."""
    qs = VoucherCode.objects.filter(item_id=item_id, status=CodeStatus.AVAILABLE).order_by("id")
    if connection.vendor == "postgresql":
        qs = qs.select_for_update(skip_locked=True, of=("self",), no_key=True)
    ids = list(qs.values_list("id", flat=True)[:quantity])
    taken = VoucherCode.objects.filter(pk__in=ids, status=CodeStatus.AVAILABLE).update(
        status=CodeStatus.RESERVED, order_id=order_id
    )
    if taken != quantity:
        raise Conflict(_("This item is out of stock."), code="out_of_stock")


def _reserve(
    *,
    actor: Any,
    member: Member,
    item: Item,
    quantity: int,
    points: int,
    yuan_value: Decimal | None,
    point_value: Any,
    client_key: str,
    note: str,
    now: dt.datetime,
) -> Order:
    """Step 1: stock, tally and codes taken, the order inserted as pending."""
    with transaction.atomic(durable=True):
        if item.stock is not None:
            taken = Item.objects.filter(orderable_q(now), pk=item.pk, stock__gte=quantity).update(
                stock=F("stock") - quantity, updated_at=timezone.now()
            )
            if taken != 1:
                _ensure_orderable(item, now)
                raise Conflict(_("This item is out of stock."), code="out_of_stock")
        MemberTally.objects.bulk_create(
            [MemberTally(item_id=item.pk, member_id=member.pk, quantity=0)], ignore_conflicts=True
        )
        tally = MemberTally.objects.filter(item_id=item.pk, member_id=member.pk)
        limit = item.per_member_limit
        if limit is not None:
            tally = tally.filter(quantity__lte=limit - quantity)
        if tally.update(quantity=F("quantity") + quantity) != 1:
            raise Conflict(
                _("The limit per member for this item (%(limit)s) has been reached.")
                % {"limit": limit},
                code="limit_reached",
            )
        order = Order.objects.create(
            member=member,
            item=item,
            quantity=quantity,
            points=points,
            yuan_value=yuan_value,
            point_value=point_value,
            business_unit_id=item.business_unit_id,
            status=OrderStatus.PENDING,
            client_key=client_key,
            note=note,
            placed_by=user_or_none(actor),
        )
        if item.kind == ItemKind.VOUCHER:
            _take_codes(item.pk, order.pk, quantity)
    return order


def _give_back(order: Order, item: Item) -> int:
    """Return what an order holds: stock, tally, codes. Unissued codes go back to the
    pool; issued ones are voided (the member has seen them). Returns the stock given
    back. The caller holds the order row."""
    codes = list(
        VoucherCode.objects.filter(order_id=order.pk)
        .exclude(status=CodeStatus.VOID)
        .values_list("status", flat=True)
    )
    released = sum(1 for s in codes if s == CodeStatus.RESERVED)
    back = released if item.kind == ItemKind.VOUCHER else order.quantity
    if item.stock is not None and back:
        Item.objects.filter(pk=item.pk).update(stock=F("stock") + back, updated_at=timezone.now())
    MemberTally.objects.filter(
        item_id=item.pk, member_id=order.member_id, quantity__gte=order.quantity
    ).update(quantity=F("quantity") - order.quantity)
    if codes:
        VoucherCode.objects.filter(order_id=order.pk, status=CodeStatus.RESERVED).update(
            status=CodeStatus.AVAILABLE, order=None
        )
        VoucherCode.objects.filter(order_id=order.pk, status=CodeStatus.ISSUED).update(
            status=CodeStatus.VOID
        )
    return back


def _unreserve(order: Order, item: Item) -> None:
    """The ledger refused to pay: undo step 1 as if it never happened."""
    with transaction.atomic(durable=True):
        rows = lock_rows(Order.objects.filter(pk=order.pk, status=OrderStatus.PENDING))
        if not rows:
            return  # the settle job got there first and cancelled it
        _give_back(rows[0], item)
        rows[0].delete()


def _timeline(
    *, order: Order, item: Item, member: Member, actor: Any, summary: str, event: str
) -> None:
    timeline_append(
        customer=member.customer_id,
        kind=TimelineEvent.Kind.POINTS,
        occurred_at=timezone.now(),
        summary=summary,
        actor=actor,
        source="rewards",
        data={"order": order.pk, "item": item.pk, "event": event, "points": order.points},
    )


def _confirm(*, actor: Any, order: Order, item: Item, member: Member, now: dt.datetime) -> Order:
    """Step 3: pending → placed (a voucher: fulfilled, its codes issued)."""
    voucher = item.kind == ItemKind.VOUCHER
    status = OrderStatus.FULFILLED if voucher else OrderStatus.PLACED
    with transaction.atomic(durable=True):
        changed = Order.objects.filter(pk=order.pk, status=OrderStatus.PENDING).update(
            status=status,
            placed_at=now,
            fulfilled_at=now if voucher else None,
            updated_at=timezone.now(),
        )
        if changed == 1:
            order.status, order.placed_at = status, now
            if voucher:
                order.fulfilled_at = now
                VoucherCode.objects.filter(order_id=order.pk, status=CodeStatus.RESERVED).update(
                    status=CodeStatus.ISSUED, issued_at=now
                )
            audit_log(
                actor=actor,
                action="rewards_order_place",
                target=order,
                target_repr=f"#{order.pk} {order.quantity}×{item.name}"[:200],
                changes={
                    "status": [OrderStatus.PENDING, status],
                    "member": member.pk,
                    "item": item.pk,
                    "quantity": order.quantity,
                    "points": order.points,
                    "yuan_value": order.yuan_value,
                    "point_value": order.point_value_id,
                },
            )
            _timeline(
                order=order,
                item=item,
                member=member,
                actor=actor,
                event="placed",
                summary=gettext(
                    "Redeemed %(points)s points for %(quantity)s × %(item)s (order #%(order)s)"
                )
                % {
                    "points": order.points,
                    "quantity": order.quantity,
                    "item": item.name,
                    "order": order.pk,
                },
            )
    if changed != 1:
        _refund_quietly(order.pk, actor=None, reason="order interrupted")
        raise Conflict(
            _("The order took too long and was cancelled; your points were given back."),
            code="order_interrupted",
        )
    return order


def order_place(
    *,
    actor: Any,
    member: Member,
    item: Item,
    quantity: int = 1,
    client_key: str = "",
    note: str = "",
    at: dt.datetime | None = None,
) -> Order:
    """Redeem points for ``quantity`` units of ``item`` (see the module docstring for the
    three steps and their compensation). Idempotent per (member, ``client_key``): the
    same key returns the first order (another item or quantity under it: Conflict).
    Errors: ``item_unavailable``, ``out_of_stock``, ``limit_reached``,
    ``insufficient_points``, ``member_not_active``, ``no_point_value`` — and then
    nothing has changed."""
    _ensure_may_order_for(actor, member)
    quantity = (
        whole_number(quantity, "quantity", low=1, high=rules.MAX_QUANTITY, optional=False) or 0
    )
    key = _clean_key(client_key)
    if key:
        existing = _order_by_key(member.pk, key)
        if existing is not None:
            return _same_or_conflict(existing, item, quantity)
    now = aware_now(at)
    _ensure_orderable(item, now)
    if member.status != Member.Status.ACTIVE:
        raise Conflict(_("Only an active member can redeem points."), code="member_not_active")
    value = None
    if item.points_price is None:
        value = point_value_at(now)
        if value is None:
            raise ValidationFailed(
                _("No point value is set for this date: yuan-priced items cannot be ordered."),
                code="no_point_value",
            )
    points, yuan_value = rules.order_points(
        points_price=item.points_price,
        yuan_value=item.yuan_value,
        quantity=quantity,
        yuan_per_point=value.yuan_per_point if value is not None else None,
    )
    try:
        order = _reserve(
            actor=actor,
            member=member,
            item=item,
            quantity=quantity,
            points=points,
            yuan_value=yuan_value,
            point_value=value,
            client_key=key,
            note=(note or "").strip()[:200],
            now=now,
        )
    except IntegrityError:
        # Lost a race on the same client key: the winner's order.
        existing = _order_by_key(member.pk, key) if key else None
        if existing is None:
            raise
        return _same_or_conflict(existing, item, quantity)
    try:
        points_redeem(
            actor=actor,
            member=member,
            points=points,
            source_type=SOURCE_TYPE,
            source_id=str(order.pk),
            reason=f"{quantity}×{item.name}"[:200],
            business_unit=item.business_unit,
            at=now,
        )
    except DomainError:
        _unreserve(order, item)
        raise
    return _confirm(actor=actor, order=order, item=item, member=member, now=now)


def order_fulfil(
    *, actor: Any, order: Order, note: str = "", at: dt.datetime | None = None
) -> Order:
    """A club operator hands over the gift / applies the offset / loads the credit.
    Only a placed order; a voucher order is fulfilled when its code is issued."""
    ensure_manager(actor)
    order = get_scoped(Order.objects.select_related("item", "member"), actor, pk=order.pk)
    now = aware_now(at)
    note = (note or "").strip()[:200]
    with transaction.atomic(durable=True):
        changed = Order.objects.filter(pk=order.pk, status=OrderStatus.PLACED).update(
            status=OrderStatus.FULFILLED,
            fulfilled_at=now,
            fulfilled_by=user_or_none(actor),
            fulfil_note=note,
            updated_at=timezone.now(),
        )
        if changed != 1:
            raise Conflict(_("Only a placed order can be fulfilled."), code="not_fulfillable")
        order.status, order.fulfilled_at, order.fulfil_note = OrderStatus.FULFILLED, now, note
        order.fulfilled_by = user_or_none(actor)
        audit_log(
            actor=actor,
            action="rewards_order_fulfil",
            target=order,
            target_repr=f"#{order.pk} {order.quantity}×{order.item.name}"[:200],
            changes={"status": [OrderStatus.PLACED, OrderStatus.FULFILLED], "note": note},
        )
        _timeline(
            order=order,
            item=order.item,
            member=order.member,
            actor=actor,
            event="fulfilled",
            summary=gettext("Redemption order #%(order)s fulfilled: %(quantity)s × %(item)s")
            % {"order": order.pk, "quantity": order.quantity, "item": order.item.name},
        )
    return order


def _cancel_rule(actor: Any, order: Order, reason: str) -> Callable[[str], bool]:
    """Which statuses this actor may cancel the order from (checks who they are)."""
    if actor is None:  # the system: the settle job rolling back an interrupted placement
        return lambda status: status != OrderStatus.CANCELLED
    ensure_can_write(actor)
    scope = scope_of(actor)
    if scope.external:
        if scope.role != Role.MEMBER or order.member.user_id != actor.pk:
            raise NotFound(code="order_not_found")
        return rules.member_may_cancel
    if not is_manager(actor):
        raise Forbidden(
            _("Only club operators manage the catalogue and its orders."), code="not_club_operator"
        )
    get_scoped(Order.objects.all(), actor, pk=order.pk)
    if not reason:
        raise field_error("reason", gettext("Give a reason for cancelling."))
    return rules.operator_may_cancel


def order_cancel(
    *, actor: Any, order: Order, reason: str = "", at: dt.datetime | None = None
) -> Order:
    """Cancel an order: by its member before fulfilment, by a club operator (with a
    reason) before or after, by the system (``actor=None``) from any live status. Stock,
    tally and unissued codes come back and the order is cancelled in one transaction;
    then the points go back to the lots they came from. Cancelling a cancelled order
    returns it (and finishes its refund if that had failed)."""
    reason = (reason or "").strip()[:200]
    found = Order.objects.select_related("item", "member").filter(pk=order.pk).first()
    if found is None:
        raise NotFound(code="order_not_found")
    order = found
    may_cancel = _cancel_rule(actor, order, reason)
    now = aware_now(at)
    with transaction.atomic(durable=True):
        rows = lock_rows(Order.objects.filter(pk=order.pk))
        if not rows:
            raise NotFound(code="order_not_found")
        locked = rows[0]
        old = locked.status
        if old != OrderStatus.CANCELLED:
            if not may_cancel(old):
                if old == OrderStatus.FULFILLED and actor is not None and not is_manager(actor):
                    message = _("A fulfilled order can only be cancelled by a club operator.")
                else:
                    message = _("This order can no longer be cancelled.")
                raise Conflict(message, code="not_cancellable")
            back = _give_back(locked, order.item)
            locked.status = OrderStatus.CANCELLED
            locked.cancelled_at = now
            locked.cancelled_by = user_or_none(actor)
            locked.cancel_reason = reason
            locked.save(
                update_fields=[
                    "status",
                    "cancelled_at",
                    "cancelled_by",
                    "cancel_reason",
                    "updated_at",
                ]
            )
            audit_log(
                actor=actor,
                action="rewards_order_cancel",
                target=locked,
                target_repr=f"#{locked.pk} {locked.quantity}×{order.item.name}"[:200],
                changes={
                    "status": [old, OrderStatus.CANCELLED],
                    "reason": reason,
                    "points": locked.points,
                    "stock_back": back,
                },
            )
            _timeline(
                order=locked,
                item=order.item,
                member=order.member,
                actor=actor,
                event="cancelled",
                summary=gettext(
                    "Redemption order #%(order)s cancelled: %(quantity)s × %(item)s, "
                    "%(points)s points given back"
                )
                % {
                    "order": locked.pk,
                    "quantity": locked.quantity,
                    "item": order.item.name,
                    "points": locked.points,
                },
            )
    if locked.refunded_at is None:
        _refund_quietly(locked.pk, actor=actor, reason=reason or "order cancelled")
        locked.refresh_from_db(fields=["refunded_at"])
    return locked


def _refund(order_id: int, *, actor: Any, reason: str) -> None:
    """Give a cancelled order's points back (idempotent) and record that it was done."""
    # NotFound: an interrupted placement that never reached the ledger, nothing to give back.
    with contextlib.suppress(NotFound):
        points_redeem_cancel(
            actor=actor, source_type=SOURCE_TYPE, source_id=str(order_id), reason=reason[:200]
        )
    Order.objects.filter(pk=order_id, refunded_at__isnull=True).exclude(
        status=OrderStatus.PENDING
    ).update(refunded_at=timezone.now())


def _refund_quietly(order_id: int, *, actor: Any, reason: str) -> None:
    """:func:`_refund`, leaving a failure to ``orders_settle`` (the cancellation itself
    has committed; the caller should not see it as failed)."""
    try:
        _refund(order_id, actor=actor, reason=reason)
    except Exception:
        logger.exception("refund of rewards order %s failed; orders_settle will retry", order_id)


def orders_settle(*, now: dt.datetime | None = None, batch: int = 200) -> dict[str, int]:
    """Periodic: cancel placements interrupted between their steps (pending for longer
    than ``STALE_PENDING``), and finish refunds of cancelled orders that failed. Safe to
    run twice or alongside placements (every step is conditional or idempotent)."""
    now = aware_now(now)
    cancelled = refunded = 0
    stale = list(
        Order.objects.filter(status=OrderStatus.PENDING, created_at__lt=now - STALE_PENDING)
        .order_by("created_at")
        .values_list("pk", flat=True)[:batch]
    )
    for pk in stale:
        try:
            order_cancel(actor=None, order=Order(pk=pk), reason="interrupted placement")
            cancelled += 1
        except DomainError:
            continue  # settled meanwhile, or busy: the next run sees it again
    unrefunded = list(
        Order.objects.filter(
            Q(cancelled_at__lt=now - REFUND_RETRY_AFTER),
            status=OrderStatus.CANCELLED,
            refunded_at__isnull=True,
        ).values_list("pk", flat=True)[:batch]
    )
    for pk in unrefunded:
        try:
            _refund(pk, actor=None, reason="order cancelled")
            refunded += 1
        except Exception:
            logger.exception("refund of rewards order %s failed again", pk)
    return {"cancelled": cancelled, "refunded": refunded}
