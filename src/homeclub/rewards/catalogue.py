"""Catalogue management (积分商城): items, stock, voucher codes — club operators only.

Stock changes only here (adding, writing off, codes) and in the order services
(``services.py``), always with ``F()`` in a conditional UPDATE; a voucher item's stock
is its count of unused codes and moves in the same transaction as the codes.
"""

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log, diff, snapshot
from homeclub.common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from homeclub.common.locking import lock_rows
from homeclub.org.models import BusinessUnit
from homeclub.org.scoping import ensure_can_write

from . import rules
from .models import (
    POINTS_ONLY_KINDS,
    STOCKED_KINDS,
    YUAN_ONLY_KINDS,
    Item,
    ItemKind,
    VoucherCode,
)
from .selectors import is_manager

ITEM_FIELDS = (
    "kind",
    "name",
    "description",
    "points_price",
    "yuan_value",
    "stock",
    "per_member_limit",
    "valid_from",
    "valid_until",
    "business_unit",
    "is_active",
)


# --- helpers shared with the order services ---------------------------------


def user_or_none(actor: Any) -> Any:
    if getattr(actor, "pk", None) and getattr(actor, "is_authenticated", False):
        return actor
    return None


def ensure_manager(actor: Any) -> None:
    ensure_can_write(actor)
    if not is_manager(actor):
        raise Forbidden(
            _("Only club operators manage the catalogue and its orders."), code="not_club_operator"
        )


def aware_now(at: dt.datetime | None) -> dt.datetime:
    if at is None:
        return timezone.now()
    if timezone.is_naive(at):
        raise ValidationFailed(fields={"at": [gettext("Enter a date and time with a time zone.")]})
    return at


def field_error(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(fields={field: [message]})


def whole_number(
    value: Any, field: str, *, low: int, high: int, optional: bool = True
) -> int | None:
    if value is None or value == "":
        if optional:
            return None
        raise field_error(field, gettext("This field is required."))
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise field_error(
            field,
            gettext("Enter a whole number from %(low)s to %(high)s.") % {"low": low, "high": high},
        )
    return value


def _yuan(value: Any, field: str) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, float | bool):
        raise field_error(field, gettext("Enter an amount in yuan above zero."))
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise field_error(field, gettext("Enter an amount in yuan above zero.")) from exc
    if not amount.is_finite() or amount <= 0 or amount >= Decimal("1e10"):
        raise field_error(field, gettext("Enter an amount in yuan above zero."))
    if amount != amount.quantize(Decimal("0.01")):
        raise field_error(field, gettext("Enter at most two decimal places."))
    return amount.quantize(Decimal("0.01"))


def _clean_item(data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Business validation of an item's fields (the form and the API only parse types)."""
    errors: dict[str, list[str]] = {}

    def check(field: str, fn: Any) -> Any:
        try:
            return fn()
        except ValidationFailed as exc:
            for name, messages in exc.fields.items():
                errors.setdefault(name, []).extend(messages)
            return None

    kind = data.get("kind")
    if kind not in ItemKind.values:
        errors["kind"] = [gettext("Select a valid choice.")]
    name = (data.get("name") or "").strip()
    if not name or len(name) > 100:
        errors["name"] = [gettext("Enter a name of 1 to 100 characters.")]
    points_price = check(
        "points_price",
        lambda: whole_number(data.get("points_price"), "points_price", low=1, high=10**9),
    )
    yuan_value = check("yuan_value", lambda: _yuan(data.get("yuan_value"), "yuan_value"))
    if "points_price" not in errors and "yuan_value" not in errors:
        if kind in POINTS_ONLY_KINDS and points_price is None:
            errors["points_price"] = [gettext("This kind of item is priced in points.")]
        elif kind in YUAN_ONLY_KINDS and yuan_value is None:
            errors["yuan_value"] = [gettext("This kind of item is priced as a yuan amount.")]
        elif kind in POINTS_ONLY_KINDS and yuan_value is not None:
            errors["yuan_value"] = [gettext("This kind of item is priced in points only.")]
        elif kind in YUAN_ONLY_KINDS and points_price is not None:
            errors["points_price"] = [gettext("This kind of item is priced in yuan only.")]
        elif (points_price is None) == (yuan_value is None):
            errors["points_price"] = [gettext("Give either a price in points or a yuan value.")]
    limit = check(
        "per_member_limit",
        lambda: whole_number(data.get("per_member_limit"), "per_member_limit", low=1, high=10**6),
    )
    valid_from = data.get("valid_from")
    valid_until = data.get("valid_until")
    for field, value in (("valid_from", valid_from), ("valid_until", valid_until)):
        if value is not None and (not isinstance(value, dt.datetime) or timezone.is_naive(value)):
            errors[field] = [gettext("Enter a date and time with a time zone.")]
    if (
        "valid_from" not in errors
        and "valid_until" not in errors
        and valid_from is not None
        and valid_until is not None
        and valid_until <= valid_from
    ):
        errors["valid_until"] = [gettext("The end must be after the start.")]
    unit = data.get("business_unit")
    if unit is not None and not isinstance(unit, BusinessUnit):
        errors["business_unit"] = [gettext("Select a valid choice.")]
    clean: dict[str, Any] = {
        "name": name,
        "description": (data.get("description") or "").strip()[:4000],
        "points_price": points_price,
        "yuan_value": yuan_value,
        "per_member_limit": limit,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "business_unit": unit,
        "is_active": bool(data.get("is_active", True)),
    }
    if creating:
        clean["kind"] = kind
        stock = check("stock", lambda: whole_number(data.get("stock"), "stock", low=0, high=10**9))
        if kind == ItemKind.VOUCHER:
            if stock:
                errors["stock"] = [gettext("A voucher's stock is its unused codes: import them.")]
            stock = 0
        elif kind in STOCKED_KINDS and stock is None and "stock" not in errors:
            errors["stock"] = [gettext("This field is required.")]
        clean["stock"] = stock
    if errors:
        raise ValidationFailed(fields=errors)
    return clean


def _item_audit_repr(item: Item) -> str:
    return f"{item.get_kind_display()} {item.name}"[:200]


# --- catalogue management ------------------------------------------------------------------


def item_create(*, actor: Any, **fields: Any) -> Item:
    """A new catalogue item. Gifts and vouchers count stock (a voucher's stock is its
    pool of unused codes, filled by importing or generating codes); other kinds count
    stock only if one is given. Kind and stock tracking are fixed once created."""
    ensure_manager(actor)
    clean = _clean_item(fields, creating=True)
    with transaction.atomic(durable=True):
        item = Item.objects.create(created_by=user_or_none(actor), **clean)
        audit_log(
            actor=actor,
            action="create",
            target=item,
            target_repr=_item_audit_repr(item),
            changes=snapshot(item, ITEM_FIELDS),
        )
    return item


def item_update(*, actor: Any, item: Item, **fields: Any) -> Item:
    """Change an item's description, price, limit, dates, business unit or active flag.
    Orders already placed keep the points they cost. Stock moves only through
    :func:`item_stock_add` and the codes; the kind never changes."""
    ensure_manager(actor)
    data = {name: getattr(item, name) for name in ITEM_FIELDS if name != "stock"}
    data.update({k: v for k, v in fields.items() if k in data and k != "kind"})
    clean = _clean_item(data, creating=False)
    with transaction.atomic(durable=True):
        locked = lock_rows(Item.objects.filter(pk=item.pk))
        if not locked:
            raise NotFound(code="item_not_found")
        current = locked[0]
        before = snapshot(current, ITEM_FIELDS)
        for name, value in clean.items():
            setattr(current, name, value)
        current.save(update_fields=[*clean, "updated_at"])
        changes = diff(before, snapshot(current, ITEM_FIELDS))
        if changes:
            audit_log(
                actor=actor,
                action="update",
                target=current,
                target_repr=_item_audit_repr(current),
                changes=changes,
            )
    return current


def item_stock_add(*, actor: Any, item: Item, quantity: int, reason: str = "") -> Item:
    """Add stock to an item that counts it (a negative number writes stock off, never
    below zero). A voucher's stock comes only from its codes."""
    ensure_manager(actor)
    if item.kind == ItemKind.VOUCHER:
        raise Conflict(
            _("A voucher's stock is its unused codes: import or generate codes."),
            code="voucher_stock_from_codes",
        )
    if item.stock is None:
        raise Conflict(_("This item has unlimited stock."), code="stock_not_counted")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity == 0:
        raise field_error("quantity", gettext("Enter a whole number other than zero."))
    if abs(quantity) > 10**9:
        raise field_error("quantity", gettext("The number is too large."))
    with transaction.atomic(durable=True):
        qs = Item.objects.filter(pk=item.pk, stock__isnull=False)
        if quantity < 0:
            qs = qs.filter(stock__gte=-quantity)
        if qs.update(stock=F("stock") + quantity, updated_at=timezone.now()) != 1:
            raise Conflict(_("There is not that much stock to write off."), code="stock_short")
        item.refresh_from_db(fields=["stock", "updated_at"])
        audit_log(
            actor=actor,
            action="rewards_stock",
            target=item,
            target_repr=_item_audit_repr(item),
            changes={"quantity": quantity, "stock_after": item.stock, "reason": reason[:200]},
        )
    return item


class CodesResult:
    """What an import or a generation did."""

    def __init__(self, added: int, duplicates: list[str], rejected: list[str]) -> None:
        self.added = added
        self.duplicates = duplicates
        self.rejected = rejected


def _ensure_voucher(item: Item) -> None:
    if item.kind != ItemKind.VOUCHER:
        raise Conflict(_("Only a voucher item has codes."), code="not_a_voucher")


def _add_codes(
    *, actor: Any, item: Item, codes: list[str], origin: str, rejected: list[str]
) -> CodesResult:
    """Insert the codes the item does not have yet and raise its stock by as many, in
    one transaction under the item's row lock (every writer of an item's codes takes it)."""
    with transaction.atomic(durable=True):
        if not lock_rows(Item.objects.filter(pk=item.pk)):
            raise NotFound(code="item_not_found")
        existing: set[str] = set()
        for start in range(0, len(codes), 1000):
            existing.update(
                VoucherCode.objects.filter(
                    item_id=item.pk, code__in=codes[start : start + 1000]
                ).values_list("code", flat=True)
            )
        new = [c for c in codes if c not in existing]
        VoucherCode.objects.bulk_create(
            [VoucherCode(item_id=item.pk, code=c, origin=origin) for c in new], batch_size=1000
        )
        if new:
            Item.objects.filter(pk=item.pk).update(
                stock=F("stock") + len(new), updated_at=timezone.now()
            )
        item.refresh_from_db(fields=["stock", "updated_at"])
        audit_log(
            actor=actor,
            action="rewards_codes_add",
            target=item,
            target_repr=_item_audit_repr(item),
            changes={
                "origin": origin,
                "added": len(new),
                "duplicates": len(existing),
                "rejected": len(rejected),
                "stock_after": item.stock,
            },
        )
    return CodesResult(len(new), sorted(existing)[:50], rejected[:50])


def voucher_codes_import(*, actor: Any, item: Item, values: list[str]) -> CodesResult:
    """Add codes (one per line or cell). Codes the item already has are skipped and
    reported; anything that is not a code is rejected and reported."""
    ensure_manager(actor)
    _ensure_voucher(item)
    codes, rejected = rules.split_codes(values)
    if len(codes) > rules.MAX_CODES_PER_BATCH:
        raise field_error(
            "codes",
            gettext("At most %(n)s codes at a time.") % {"n": rules.MAX_CODES_PER_BATCH},
        )
    if not codes:
        raise field_error("codes", gettext("No valid code was found."))
    return _add_codes(
        actor=actor, item=item, codes=codes, origin=VoucherCode.Origin.IMPORTED, rejected=rejected
    )


def voucher_codes_generate(*, actor: Any, item: Item, count: int, prefix: str = "") -> CodesResult:
    """Generate ``count`` random codes (12 unambiguous characters after ``prefix``)."""
    ensure_manager(actor)
    _ensure_voucher(item)
    count = whole_number(count, "count", low=1, high=rules.MAX_CODES_PER_BATCH, optional=False) or 0
    prefix = (prefix or "").strip()
    if prefix and (len(prefix) > 20 or rules.clean_code(prefix + "AAA") is None):
        raise field_error("prefix", gettext("Use up to 20 letters, digits, dots or dashes."))
    codes: set[str] = set()
    while len(codes) < count:
        codes.add(rules.new_code(prefix))
    result = _add_codes(
        actor=actor,
        item=item,
        codes=sorted(codes),
        origin=VoucherCode.Origin.GENERATED,
        rejected=[],
    )
    return result
