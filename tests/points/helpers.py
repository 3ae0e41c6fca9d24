"""Builders shared by the club, points and points-concurrency tests."""

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from homeclub.club.models import Member
from homeclub.club.services import member_join
from homeclub.customers.models import Customer, CustomerProject
from homeclub.org.models import BusinessUnit, OrgNode
from homeclub.points.models import Account, Entry, Lot, LotUse
from homeclub.points.services import earn_rate_set, point_value_set

_seq = itertools.count(1)
EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def make_units(group: OrgNode) -> dict[str, BusinessUnit]:
    return {
        kind: BusinessUnit.objects.create(group=group, kind=kind, code=f"bu-{kind}", name=kind)
        for kind in ("residential", "commercial", "hotel", "property")
    }


def make_customer(project: OrgNode, *, birth: dt.date | None = None, **extra: Any) -> Customer:
    n = next(_seq)
    customer = Customer.objects.create(
        name=f"会员{n}",
        mobile=f"+86139{n:08d}",
        project=project,
        birth_date=birth if birth is not None else dt.date(1985, 5, 5),
        **extra,
    )
    # Every customer has a link to its home project (scoping relies on it).
    CustomerProject.objects.create(
        customer=customer, project=project, owner=customer.owner, first_seen_at=customer.created_at
    )
    return customer


def make_member(project: OrgNode, unit: BusinessUnit, **kwargs: Any) -> Member:
    return member_join(actor=None, customer=make_customer(project), business_unit=unit, **kwargs)


def set_rates(units: dict[str, BusinessUnit], *, at: dt.datetime = EPOCH) -> None:
    """Seed 003's business units made comparable (see test_worked_example)."""
    earn_rate_set(
        actor=None, business_unit=units["residential"], points_per_unit=1000, valid_from=at
    )
    earn_rate_set(actor=None, business_unit=units["commercial"], points_per_unit=1, valid_from=at)
    earn_rate_set(actor=None, business_unit=units["property"], points_per_unit=1, valid_from=at)
    earn_rate_set(actor=None, business_unit=units["hotel"], points_per_unit=2, valid_from=at)
    point_value_set(actor=None, yuan_per_point=Decimal("0.10"), valid_from=at)


def assert_ledger_consistent(account: Account) -> None:
    """The invariants every test ends on."""
    account.refresh_from_db()
    entries = Entry.objects.filter(account=account)
    assert account.balance >= 0 and account.pending >= 0 and account.debt >= 0
    assert account.balance == sum(e.points for e in entries)
    assert account.pending == sum(e.pending_delta for e in entries)
    assert account.debt == sum(e.debt_delta for e in entries)
    lots = list(Lot.objects.filter(account=account))
    assert account.balance == sum(lot.remaining for lot in lots)
    last = entries.order_by("-id").first()
    if last is not None:
        assert (last.balance_after, last.pending_after, last.debt_after) == (
            account.balance,
            account.pending,
            account.debt,
        )
    # No lot consumed twice: what a lot lost is exactly its live uses.
    restored = {
        u.pk
        for u in LotUse.objects.filter(
            entry__in=Entry.objects.filter(
                account=account, kind=Entry.Kind.REDEEM, followers__kind=Entry.Kind.REDEEM_CANCEL
            )
        )
    }
    for lot in lots:
        live = sum(u.points for u in lot.uses.all() if u.pk not in restored)
        assert lot.points - lot.remaining == live, (lot, live)
        assert 0 <= lot.remaining <= lot.points
