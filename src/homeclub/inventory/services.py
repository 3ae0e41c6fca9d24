"""Writes of inventory and sales control.

The invariant every function here keeps: a unit's status changes only through ONE
conditional UPDATE (``_move``) whose WHERE names the state it leaves, and the row count
decides — never a read followed by a write in Python. The audit row and the version bump
of the live board are written in the same transaction. Subscriptions move with their unit
in that transaction; a partial unique constraint allows one live subscription per unit.
"""

import datetime as dt
from collections.abc import Iterable, Mapping
from collections.abc import Sequence as Seq
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import Conflict, Forbidden, ValidationFailed
from homeclub.common.money import ZERO, yuan
from homeclub.org.models import OrgNode
from homeclub.org.roles import Role
from homeclub.org.scoping import ensure_can_write, ensure_project_in_scope, scope_of

from .live import version_bump_on_commit
from .models import (
    LIVE_SUBSCRIPTION,
    Building,
    Contract,
    Orientation,
    Payment,
    PaymentKind,
    Pledge,
    PledgeStatus,
    PriceList,
    PriceListItem,
    ReleaseBatch,
    SalesPolicy,
    Sequence,
    Subscription,
    SubscriptionStatus,
    Unit,
    UnitStatus,
)
from .selectors import unit_price_current

S = UnitStatus
SS = SubscriptionStatus
MANAGER_ROLES = frozenset({Role.SALES_MANAGER, Role.ADMIN})
DEFAULT_DISCOUNT_LIMIT = Decimal("0.02")


# --- helpers (run inside the entry service's transaction) --------------------------------


def _writer_in(actor: Any, project_id: int) -> None:
    ensure_can_write(actor)
    ensure_project_in_scope(actor, project_id)


def _move(
    unit_id: int,
    *,
    frm: Iterable[str],
    to: str,
    now: dt.datetime,
    where: Mapping[str, Any] | None = None,
    **values: Any,
) -> bool:
    """THE unit transition: one conditional UPDATE; True when this caller won it."""
    updated = Unit.objects.filter(pk=unit_id, status__in=list(frm), **(where or {})).update(
        status=to,
        status_changed_at=now,
        updated_at=now,
        version=F("version") + 1,
        **values,
    )
    return updated == 1


def _audit_unit(actor: Any, unit: Unit, action: str, frm: str, to: str, **extra: Any) -> None:
    audit_log(
        actor=actor,
        action=action,
        target_type="inventory.unit",
        target_id=str(unit.pk),
        target_repr=unit.number,
        changes={"status": [frm, to], **extra},
    )
    version_bump_on_commit(unit.project_id)


def _unit_not_available() -> Conflict:
    return Conflict(_("This unit is no longer available."), code="unit_not_available")


def _next_number(project_id: int, name: str) -> int:
    """Race-free per-project counter: the UPDATE locks the row until commit."""
    counter = Sequence.objects.filter(project_id=project_id, name=name)
    if not counter.update(value=F("value") + 1):
        try:
            with transaction.atomic():
                Sequence.objects.create(project_id=project_id, name=name, value=1)
            return 1
        except IntegrityError:
            counter.update(value=F("value") + 1)  # a concurrent first caller created it
    return int(counter.values_list("value", flat=True).get())


def discount_limit(project_id: int) -> Decimal:
    """A consultant's discount limit as a fraction of the list price: the project's sales
    policy if it has one, else the ``HOMECLUB_CONSULTANT_DISCOUNT_LIMIT`` setting."""
    policy = SalesPolicy.objects.filter(project_id=project_id).first()
    if policy is not None:
        return policy.consultant_discount_limit
    return Decimal(
        str(getattr(settings, "HOMECLUB_CONSULTANT_DISCOUNT_LIMIT", DEFAULT_DISCOUNT_LIMIT))
    )


def _approval_hold(project_id: int) -> dt.timedelta:
    policy = SalesPolicy.objects.filter(project_id=project_id).first()
    return dt.timedelta(minutes=policy.approval_hold_minutes if policy else 24 * 60)


def _after_deal(*, actor: Any, subscription: Subscription, event: str) -> None:
    """THE place where other domains learn of a deal (``event``: subscribed, signed,
    cancelled, swapped, renamed). Runs inside the deal's transaction, after its own write,
    so a customer stage change commits or rolls back with the unit; messages, points and
    commissions must register themselves with ``transaction.on_commit`` from here.

    Wired now: the customer's pipeline stage in the project (sales). Points and channel
    commissions join here when those services exist.
    """
    from homeclub.channels.services import report_advance_deal
    from homeclub.sales.pipeline import pipeline_deal

    pipeline_event = "subscribed" if event in ("renamed", "swapped") else event
    pipeline_deal(
        actor=actor,
        customer_id=subscription.customer_id,
        project_id=subscription.project_id,
        event=pipeline_event,
    )
    if event in ("subscribed", "signed"):
        report_advance_deal(
            actor=actor,
            customer_id=subscription.customer_id,
            project_id=subscription.project_id,
            status=event,
        )
    from homeclub.channels.commissions import commission_on_deal

    commission_on_deal(actor=actor, subscription=subscription, event=event)


# --- buildings and units ----------------------------------------------------------------


def building_create(*, actor: Any, project: OrgNode, name: str, sort: int = 0) -> Building:
    _writer_in(actor, project.pk)
    if project.kind != OrgNode.Kind.PROJECT:
        raise ValidationFailed(fields={"project": [str(_("Choose a project."))]})
    name = name.strip()
    if not name:
        raise ValidationFailed(fields={"name": [str(_("This field is required."))]})
    try:
        with transaction.atomic(durable=True):
            building = Building.objects.create(project=project, name=name, sort=sort)
            audit_log(actor=actor, action="inventory.building.create", target=building)
    except IntegrityError as exc:
        raise Conflict(_("This building already exists."), code="duplicate_building") from exc
    return building


def _clean_unit(data: Mapping[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    out["number"] = str(data.get("number") or "").strip()
    if not out["number"]:
        errors["number"] = [str(_("This field is required."))]
    try:
        out["floor"] = int(data.get("floor"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        errors["floor"] = [str(_("Enter a whole number."))]
    for name in ("gross_area", "net_area"):
        try:
            value = Decimal(str(data.get(name))).quantize(Decimal("0.01"))
            if value <= 0:
                raise ValueError
            out[name] = value
        except (ArithmeticError, ValueError, TypeError):
            errors[name] = [str(_("Enter a positive area."))]
    for name in ("list_price", "unit_price"):
        raw = data.get(name)
        try:
            if isinstance(raw, float):
                raw = str(raw)  # spreadsheet cells arrive as floats
            value = yuan(str(raw) if raw not in (None, "") else "0")
            if value < 0:
                raise ValueError
            out[name] = value
        except (ValueError, TypeError):
            errors[name] = [str(_("Enter an amount in yuan."))]
    orientation = str(data.get("orientation") or "").strip().upper()
    if orientation and orientation not in Orientation.values:
        errors["orientation"] = [str(_("Select a valid choice."))]
    out["orientation"] = orientation
    out["layout"] = str(data.get("layout") or "").strip()[:40]
    if errors:
        raise ValidationFailed(fields=errors)
    return out


def unit_create(*, actor: Any, building: Building, **data: Any) -> Unit:
    """A new unit starts unreleased; a release batch puts it on sale."""
    _writer_in(actor, building.project_id)
    clean = _clean_unit(data)
    try:
        with transaction.atomic(durable=True):
            unit = Unit.objects.create(project_id=building.project_id, building=building, **clean)
            audit_log(actor=actor, action="inventory.unit.create", target=unit, changes=clean)
            version_bump_on_commit(unit.project_id)
    except IntegrityError as exc:
        raise Conflict(_("A unit with this number already exists."), code="duplicate_unit") from exc
    return unit


def release_batch_create(
    *, actor: Any, project: OrgNode, name: str, units: Seq[Unit], now: dt.datetime | None = None
) -> ReleaseBatch:
    """加推: all the given units go from unreleased to available, or none do."""
    _writer_in(actor, project.pk)
    now = now or timezone.now()
    ids = sorted({u.pk for u in units})
    if not ids:
        raise ValidationFailed(fields={"units": [str(_("Choose at least one unit."))]})
    with transaction.atomic(durable=True):
        batch = ReleaseBatch.objects.create(
            project=project,
            name=name,
            released_at=now,
            released_by=_user(actor),
            unit_count=len(ids),
        )
        moved = Unit.objects.filter(pk__in=ids, project=project, status=S.UNRELEASED).update(
            status=S.AVAILABLE,
            release_batch=batch,
            status_changed_at=now,
            updated_at=now,
            version=F("version") + 1,
        )
        if moved != len(ids):
            raise Conflict(
                _("Some units are not unreleased units of this project."),
                code="unit_not_unreleased",
            )
        audit_log(
            actor=actor,
            action="inventory.release",
            target=batch,
            changes={"units": ids, "status": [S.UNRELEASED, S.AVAILABLE]},
        )
        version_bump_on_commit(project.pk)
    return batch


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


# --- price lists ------------------------------------------------------------------------


def price_list_create(
    *,
    actor: Any,
    project: OrgNode,
    effective_at: dt.datetime,
    prices: Mapping[int, tuple[Decimal, Decimal]],
    name: str = "",
) -> PriceList:
    """A new price list version (``prices``: unit id → (list price, unit price)). Earlier
    versions stay untouched: deals keep the item they were made at."""
    _writer_in(actor, project.pk)
    if timezone.is_naive(effective_at):
        raise ValidationFailed(
            fields={"effective_at": [str(_("Enter a date and time with a time zone."))]}
        )
    unit_ids = set(
        Unit.objects.filter(project=project, pk__in=list(prices)).values_list("pk", flat=True)
    )
    if unit_ids != set(prices):
        raise ValidationFailed(fields={"prices": [str(_("Some units are not in this project."))]})
    with transaction.atomic(durable=True):
        version = _next_number(project.pk, "price_list")
        price_list = PriceList.objects.create(
            project=project,
            version=version,
            name=name or f"v{version}",
            effective_at=effective_at,
            created_by=_user(actor),
        )
        PriceListItem.objects.bulk_create(
            PriceListItem(
                price_list=price_list, unit_id=uid, list_price=yuan(lp), unit_price=yuan(up)
            )
            for uid, (lp, up) in sorted(prices.items())
        )
        audit_log(
            actor=actor,
            action="inventory.price_list.create",
            target=price_list,
            changes={"version": version, "effective_at": effective_at, "units": len(prices)},
        )
        version_bump_on_commit(project.pk)
    return price_list


# --- pledges ----------------------------------------------------------------------------


def pledge_create(
    *,
    actor: Any,
    project: OrgNode,
    customer: Any,
    deposit: Decimal,
    max_units: int = 1,
    consultant: Any = None,
    buyer: Any = None,
) -> Pledge:
    """认筹: the pledge number is unique per project and drawn from a locked counter."""
    _writer_in(actor, project.pk)
    deposit = yuan(deposit)
    errors: dict[str, list[str]] = {}
    if deposit <= ZERO:
        errors["deposit"] = [str(_("Enter a positive amount."))]
    if max_units < 1:
        errors["max_units"] = [str(_("At least one unit."))]
    if errors:
        raise ValidationFailed(fields=errors)
    if consultant is None and scope_of(actor).role == Role.SALES_CONSULTANT:
        consultant = actor
    with transaction.atomic(durable=True):
        number = _next_number(project.pk, "pledge")
        pledge = Pledge.objects.create(
            project=project,
            number=number,
            customer=customer,
            consultant=consultant,
            buyer=buyer,
            deposit=deposit,
            max_units=max_units,
        )
        audit_log(
            actor=actor,
            action="inventory.pledge.create",
            target=pledge,
            changes={"number": number, "deposit": deposit, "max_units": max_units},
        )
        from homeclub.sales.pipeline import pipeline_deal

        pipeline_deal(actor=actor, customer_id=customer.pk, project_id=project.pk, event="pledged")
        from homeclub.channels.services import report_advance_deal

        report_advance_deal(
            actor=actor, customer_id=customer.pk, project_id=project.pk, status="pledged"
        )
    return pledge


# --- subscriptions and contracts --------------------------------------------------------


def subscription_create(
    *,
    actor: Any,
    unit: Unit,
    customer: Any,
    agreed_price: Decimal,
    deposit: Decimal,
    discount_note: str = "",
    pledge: Pledge | None = None,
    now: dt.datetime | None = None,
) -> Subscription:
    """认购 of an available unit (not one reserved for an online opening).

    Within the consultant's discount limit (or by a manager) the unit goes available →
    subscribed; beyond it the unit goes available → held for this subscription, which
    waits for a manager's approval until the hold expires.

    With ``pledge`` (认筹转认购) the deal is made through that pledge: it must be the same
    customer's, in the unit's project, active, with a unit left to take. Its counter
    moves by a conditional UPDATE bounded by ``max_units`` after the unit's (the order a
    pick uses, so the two never deadlock); ending the deal gives the unit back."""
    _writer_in(actor, unit.project_id)
    now = now or timezone.now()
    agreed_price, deposit = yuan(agreed_price), yuan(deposit)
    if agreed_price <= ZERO or deposit < ZERO:
        raise ValidationFailed(fields={"agreed_price": [str(_("Enter a positive amount."))]})
    if pledge is not None and (
        pledge.project_id != unit.project_id or pledge.customer_id != customer.pk
    ):
        raise ValidationFailed(
            fields={"pledge": [str(_("Choose a pledge of this customer in this project."))]}
        )
    list_price, item = unit_price_current(unit=unit, at=now)
    discount = max(list_price - agreed_price, ZERO)
    rate = discount / list_price if list_price > ZERO else Decimal(0)
    needs_approval = scope_of(actor).role not in MANAGER_ROLES and rate > discount_limit(
        unit.project_id
    )
    status = SS.PENDING_APPROVAL if needs_approval else SS.ACTIVE
    try:
        with transaction.atomic(durable=True):
            sub = Subscription.objects.create(
                project_id=unit.project_id,
                unit=unit,
                customer=customer,
                consultant=_user(actor),
                pledge=pledge,
                status=status,
                list_price=list_price,
                price_item=item,
                agreed_price=agreed_price,
                discount=discount,
                discount_note=discount_note[:200],
                deposit=deposit,
                subscribed_at=now,
            )
            if needs_approval:
                to = S.HELD
                won = _move(
                    unit.pk,
                    frm=[S.AVAILABLE],
                    to=to,
                    now=now,
                    where={"opening__isnull": True},
                    subscription=sub,
                    hold_expires_at=now + _approval_hold(unit.project_id),
                )
            else:
                to = S.SUBSCRIBED
                won = _move(
                    unit.pk,
                    frm=[S.AVAILABLE],
                    to=to,
                    now=now,
                    where={"opening__isnull": True},
                    subscription=sub,
                )
            if not won:
                raise _unit_not_available()
            if pledge is not None and not Pledge.objects.filter(
                pk=pledge.pk,
                customer_id=customer.pk,
                project_id=unit.project_id,
                status=PledgeStatus.ACTIVE,
                units_taken__lt=F("max_units"),
            ).update(units_taken=F("units_taken") + 1, updated_at=now):
                raise _pledge_refusal(pledge.pk)
            _audit_unit(
                actor,
                unit,
                "inventory.subscription.create",
                S.AVAILABLE,
                to,
                subscription=sub.pk,
                customer=sub.customer_id,
                agreed_price=agreed_price,
                discount=discount,
                needs_approval=needs_approval,
                pledge=pledge.number if pledge is not None else None,
            )
            if not needs_approval:
                _after_deal(actor=actor, subscription=sub, event="subscribed")
    except IntegrityError as exc:  # another live subscription of this unit
        raise _unit_not_available() from exc
    return sub


def _pledge_refusal(pledge_id: int) -> Conflict:
    """Why the pledge's conditional UPDATE matched nothing (read only on refusal)."""
    if Pledge.objects.filter(pk=pledge_id).exclude(status=PledgeStatus.ACTIVE).exists():
        return Conflict(_("This pledge is no longer active."), code="pledge_inactive")
    return Conflict(
        _("This pledge has already taken all the units it may take."), code="pledge_limit_reached"
    )


def _ensure_manager(actor: Any, project_id: int) -> None:
    _writer_in(actor, project_id)
    if scope_of(actor).role not in MANAGER_ROLES:
        raise Forbidden(_("Only a sales manager may approve discounts."), code="manager_only")


def subscription_approve(
    *, actor: Any, subscription: Subscription, now: dt.datetime | None = None
) -> Subscription:
    """A manager approves a discount: held (for this subscription, not expired) →
    subscribed."""
    _ensure_manager(actor, subscription.project_id)
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        won = _move(
            subscription.unit_id,
            frm=[S.HELD],
            to=S.SUBSCRIBED,
            now=now,
            where={"subscription_id": subscription.pk, "hold_expires_at__gt": now},
            hold_expires_at=None,
        )
        moved = Subscription.objects.filter(pk=subscription.pk, status=SS.PENDING_APPROVAL).update(
            status=SS.ACTIVE, approved_by=actor, approved_at=now, updated_at=now
        )
        if not (won and moved):
            raise Conflict(
                _("This subscription is no longer waiting for approval."), code="not_pending"
            )
        subscription.refresh_from_db()
        _audit_unit(
            actor,
            subscription.unit,
            "inventory.subscription.approve",
            S.HELD,
            S.SUBSCRIBED,
            subscription=subscription.pk,
        )
        _after_deal(actor=actor, subscription=subscription, event="subscribed")
    return subscription


def subscription_reject(
    *, actor: Any, subscription: Subscription, reason: str, now: dt.datetime | None = None
) -> Subscription:
    _ensure_manager(actor, subscription.project_id)
    return _end(
        actor=actor,
        subscription=subscription,
        reason=reason,
        now=now,
        frm_sub=[SS.PENDING_APPROVAL],
        to_sub=SS.REJECTED,
        frm_unit=[S.HELD],
        action="inventory.subscription.reject",
    )


def subscription_cancel(
    *, actor: Any, subscription: Subscription, reason: str, now: dt.datetime | None = None
) -> Subscription:
    """Cancellation (退房 after signing, 退订 before): the unit returns to available and
    the subscription (and its contract) end, with the reason, in one transaction."""
    _writer_in(actor, subscription.project_id)
    return _end(
        actor=actor,
        subscription=subscription,
        reason=reason,
        now=now,
        frm_sub=list(LIVE_SUBSCRIPTION),
        to_sub=SS.CANCELLED,
        frm_unit=[S.HELD, S.SUBSCRIBED, S.SIGNED],
        action="inventory.subscription.cancel",
    )


def _end(
    *,
    actor: Any,
    subscription: Subscription,
    reason: str,
    now: dt.datetime | None,
    frm_sub: list[str],
    to_sub: str,
    frm_unit: list[str],
    action: str,
) -> Subscription:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(fields={"reason": [str(_("Give a reason."))]})
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        ended = Subscription.objects.filter(pk=subscription.pk, status__in=frm_sub).update(
            status=to_sub, ended_at=now, end_reason=reason[:200], updated_at=now
        )
        if not ended:
            raise Conflict(
                _("This subscription cannot be ended in its current state."),
                code="subscription_not_live",
            )
        unit = Unit.objects.get(pk=subscription.unit_id)
        if not _move(
            unit.pk,
            frm=frm_unit,
            to=S.AVAILABLE,
            now=now,
            where={"subscription_id": subscription.pk},
            subscription=None,
            hold_expires_at=None,
        ):
            raise Conflict(_("The unit is not held by this subscription."), code="unit_mismatch")
        Contract.objects.filter(subscription=subscription, cancelled_at__isnull=True).update(
            cancelled_at=now, updated_at=now
        )
        if subscription.pledge_id:
            Pledge.objects.filter(pk=subscription.pledge_id, units_taken__gt=0).update(
                units_taken=F("units_taken") - 1, updated_at=now
            )
        _audit_unit(
            actor,
            unit,
            action,
            unit.status,
            S.AVAILABLE,
            subscription=subscription.pk,
            reason=reason,
        )
        subscription.refresh_from_db()
        _after_deal(actor=actor, subscription=subscription, event="cancelled")
    return subscription


def subscription_swap(
    *,
    actor: Any,
    subscription: Subscription,
    new_unit: Unit,
    agreed_price: Decimal,
    reason: str,
    now: dt.datetime | None = None,
) -> Subscription:
    """换房: the new unit goes available → subscribed and the old one subscribed →
    available, in one transaction; the subscription takes the new unit's current price."""
    _writer_in(actor, subscription.project_id)
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(fields={"reason": [str(_("Give a reason."))]})
    if new_unit.project_id != subscription.project_id or new_unit.pk == subscription.unit_id:
        raise _unit_not_available()
    agreed_price = yuan(agreed_price)
    list_price, item = unit_price_current(unit=new_unit, at=now)
    discount = max(list_price - agreed_price, ZERO)
    rate = discount / list_price if list_price > ZERO else Decimal(0)
    if scope_of(actor).role not in MANAGER_ROLES and rate > discount_limit(new_unit.project_id):
        raise Forbidden(
            _("This discount needs a sales manager's approval."), code="discount_needs_approval"
        )
    old_unit_id = subscription.unit_id
    try:
        with transaction.atomic(durable=True):
            # Both rows in primary-key order, so two crossing swaps cannot deadlock.
            for uid in sorted([old_unit_id, new_unit.pk]):
                if uid == new_unit.pk:
                    ok = _move(
                        uid,
                        frm=[S.AVAILABLE],
                        to=S.SUBSCRIBED,
                        now=now,
                        where={"opening__isnull": True},
                        subscription=subscription,
                    )
                    if not ok:
                        raise _unit_not_available()
                elif not _move(
                    uid,
                    frm=[S.SUBSCRIBED],
                    to=S.AVAILABLE,
                    now=now,
                    where={"subscription_id": subscription.pk},
                    subscription=None,
                ):
                    raise Conflict(
                        _("Only a subscribed, unsigned deal can change units."),
                        code="subscription_not_swappable",
                    )
            moved = Subscription.objects.filter(
                pk=subscription.pk, status=SS.ACTIVE, unit_id=old_unit_id
            ).update(
                unit=new_unit,
                list_price=list_price,
                price_item=item,
                agreed_price=agreed_price,
                discount=discount,
                updated_at=now,
            )
            if not moved:
                raise Conflict(
                    _("Only a subscribed, unsigned deal can change units."),
                    code="subscription_not_swappable",
                )
            audit_log(
                actor=actor,
                action="inventory.subscription.swap",
                target=subscription,
                changes={
                    "unit": [old_unit_id, new_unit.pk],
                    "reason": reason,
                    "agreed_price": agreed_price,
                },
            )
            version_bump_on_commit(subscription.project_id)
            subscription.refresh_from_db()
            _after_deal(actor=actor, subscription=subscription, event="swapped")
    except IntegrityError as exc:
        raise _unit_not_available() from exc
    return subscription


def subscription_rename(
    *, actor: Any, subscription: Subscription, customer: Any, reason: str
) -> Subscription:
    """更名: the buyer of a live deal changes; the old buyer is kept in the audit row."""
    _writer_in(actor, subscription.project_id)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(fields={"reason": [str(_("Give a reason."))]})
    old = subscription.customer_id
    if customer.pk == old:
        return subscription
    with transaction.atomic(durable=True):
        moved = Subscription.objects.filter(
            pk=subscription.pk, customer_id=old, status__in=[SS.ACTIVE, SS.SIGNED]
        ).update(customer=customer, updated_at=timezone.now())
        if not moved:
            raise Conflict(
                _("This subscription cannot be renamed in its current state."),
                code="subscription_not_live",
            )
        audit_log(
            actor=actor,
            action="inventory.subscription.rename",
            target=subscription,
            changes={"customer": [old, customer.pk], "reason": reason},
        )
        subscription.refresh_from_db()
        _after_deal(actor=actor, subscription=subscription, event="renamed")
    return subscription


def contract_sign(
    *,
    actor: Any,
    subscription: Subscription,
    number: str,
    price: Decimal | None = None,
    now: dt.datetime | None = None,
) -> Contract:
    """签约: subscription active → signed and its unit subscribed → signed, together."""
    _writer_in(actor, subscription.project_id)
    now = now or timezone.now()
    number = (number or "").strip()
    if not number:
        raise ValidationFailed(fields={"number": [str(_("This field is required."))]})
    try:
        with transaction.atomic(durable=True):
            signed = Subscription.objects.filter(pk=subscription.pk, status=SS.ACTIVE).update(
                status=SS.SIGNED, updated_at=now
            )
            if not signed or not _move(
                subscription.unit_id,
                frm=[S.SUBSCRIBED],
                to=S.SIGNED,
                now=now,
                where={"subscription_id": subscription.pk},
            ):
                raise Conflict(
                    _("Only a subscribed deal can be signed."), code="subscription_not_active"
                )
            contract = Contract.objects.create(
                project_id=subscription.project_id,
                subscription=subscription,
                number=number,
                price=yuan(price) if price is not None else subscription.agreed_price,
                signed_at=now,
            )
            subscription.refresh_from_db()
            _audit_unit(
                actor,
                subscription.unit,
                "inventory.contract.sign",
                S.SUBSCRIBED,
                S.SIGNED,
                subscription=subscription.pk,
                contract=number,
                price=contract.price,
            )
            _after_deal(actor=actor, subscription=subscription, event="signed")
    except IntegrityError as exc:
        raise Conflict(
            _("A contract with this number already exists."), code="duplicate_contract"
        ) from exc
    return contract


def payment_record(
    *, actor: Any, contract: Contract, kind: str, amount: Decimal, paid_on: dt.date
) -> Payment:
    """A payment against a live contract; ``paid_total`` moves with ``F()`` beside it."""
    _writer_in(actor, contract.project_id)
    amount = yuan(amount)
    if amount <= ZERO:
        raise ValidationFailed(fields={"amount": [str(_("Enter a positive amount."))]})
    if kind not in PaymentKind.values:
        raise ValidationFailed(fields={"kind": [str(_("Select a valid choice."))]})
    with transaction.atomic(durable=True):
        if not Contract.objects.filter(pk=contract.pk, cancelled_at__isnull=True).update(
            paid_total=F("paid_total") + amount, updated_at=timezone.now()
        ):
            raise Conflict(_("This contract was cancelled."), code="contract_cancelled")
        payment = Payment.objects.create(
            contract=contract, kind=kind, amount=amount, paid_on=paid_on, recorded_by=_user(actor)
        )
        audit_log(
            actor=actor,
            action="inventory.payment.record",
            target=contract,
            changes={"kind": kind, "amount": amount, "paid_on": paid_on},
        )
        from homeclub.channels.commissions import commission_on_payment

        commission_on_payment(actor=actor, contract=contract)
    contract.refresh_from_db()
    return payment


__all__ = [
    "building_create",
    "contract_sign",
    "discount_limit",
    "payment_record",
    "pledge_create",
    "price_list_create",
    "release_batch_create",
    "subscription_approve",
    "subscription_cancel",
    "subscription_create",
    "subscription_reject",
    "subscription_rename",
    "subscription_swap",
    "unit_create",
]
