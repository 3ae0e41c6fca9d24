"""Builders shared by the catalogue tests and its concurrency tests."""

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from homeclub.club.models import Member
from homeclub.org.models import BusinessUnit, User
from homeclub.points.models import Account
from homeclub.points.services import points_award
from homeclub.rewards.catalogue import item_create, voucher_codes_import
from homeclub.rewards.models import Item, ItemKind
from tests.points.helpers import make_member

_seq = itertools.count(1)


@dataclass
class World:
    org: Any
    units: dict[str, BusinessUnit]
    operator: User  # club operator of the whole group
    sz_operator: User  # club operator of the Shenzhen city company only
    sales: User
    analyst: User
    member_user: User
    member: Member  # a customer of sz1, linked to member_user
    other_user: User
    other: Member  # a customer of gz1, linked to other_user

    def gift(self, *, stock: int = 10, points: int = 100, **extra: Any) -> Item:
        return item_create(
            actor=self.operator,
            kind=ItemKind.GIFT,
            points_price=points,
            stock=stock,
            **{"name": f"礼品{next(_seq)}", **extra},
        )

    def voucher(self, *, codes: int = 5, points: int = 50, **extra: Any) -> Item:
        item = item_create(
            actor=self.operator,
            kind=ItemKind.VOUCHER,
            points_price=points,
            **{"name": f"洗车券{next(_seq)}", **extra},
        )
        if codes:
            voucher_codes_import(
                actor=self.operator,
                item=item,
                values=[f"V{item.pk}-{i:04d}" for i in range(codes)],
            )
            item.refresh_from_db()
        return item

    def fee_offset(self, *, yuan: str = "100.00", **extra: Any) -> Item:
        return item_create(
            actor=self.operator,
            kind=ItemKind.FEE_OFFSET,
            yuan_value=Decimal(yuan),
            **{"name": f"物业费抵扣{next(_seq)}", "business_unit": self.units["property"], **extra},
        )


def fund(world: World, member: Member, points: int, *, lots: int = 1) -> None:
    """Award ``points`` in ``lots`` equal awards (the last takes the remainder)."""
    each = points // lots
    for i in range(lots):
        amount = each if i < lots - 1 else points - each * (lots - 1)
        points_award(
            actor=None,
            member=member,
            business_unit=world.units["commercial"],
            points=amount,
            source_type="test_fund",
            source_id=f"{member.pk}-{next(_seq)}",
        )


def balance(member: Member) -> int:
    account = Account.objects.filter(member=member).first()
    return account.balance if account else 0


def make_world(org: Any, units: dict[str, BusinessUnit], make_user: Callable[..., User]) -> World:
    member_user = make_user("member")
    other_user = make_user("member")
    return World(
        org=org,
        units=units,
        operator=make_user("club_operator", org.group),
        sz_operator=make_user("club_operator", org.sz),
        sales=make_user("sales_manager", org.group),
        analyst=make_user("analyst", org.group),
        member_user=member_user,
        member=make_member(org.sz1, units["commercial"], user=member_user),
        other_user=other_user,
        other=make_member(org.gz1, units["commercial"], user=other_user),
    )
