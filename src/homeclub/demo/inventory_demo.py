"""Demo sales control at the first Shenzhen project (the named logins' project): three
buildings of 150 units in every state, a price list, deals of real demo customers
(subscribed, signed and paid, one discount waiting for approval), pledges, and an online
opening tomorrow morning with admitted pledges and favourites — the ``member`` login is
the buyer of one pledge, so its phone page shows the countdown.

Everything goes through the inventory services, as the sales office would; the choices
are drawn from the demo seed, so two loads with one seed agree."""

import datetime as dt
import io
import random
from decimal import Decimal
from typing import TYPE_CHECKING

import xlsxwriter
from django.utils import timezone

from homeclub.customers.models import Customer
from homeclub.inventory.models import Unit
from homeclub.inventory.selectors import LOCAL_TZ, unit_price_current

from .dataset import FIRST_PROJECT, project_staff

if TYPE_CHECKING:
    from .seeding import DemoContext

# (building, floors, units per floor, yuan per m² on the first floor)
BUILDINGS = (("1栋", 16, 4, 68000), ("2栋", 14, 4, 72000), ("3栋", 10, 3, 80000))
LAYOUTS = (("3室2厅", "118.50", "92.30", "S"), ("4室2厅", "143.20", "112.60", "NS"))
LAYOUTS_3 = (("3室2厅", "128.00", "99.80", "SE"), ("4室2厅", "163.40", "127.10", "NS"))
OPENING_UNITS = 40
PLEDGES = 8
DEALS = 30
D = Decimal


def seed_inventory(ctx: "DemoContext") -> None:
    from homeclub.club.models import Member
    from homeclub.inventory.buyers import buyer_ensure, favourites_set
    from homeclub.inventory.openings import opening_create
    from homeclub.inventory.services import (
        building_create,
        contract_sign,
        payment_record,
        pledge_create,
        price_list_create,
        release_batch_create,
        subscription_create,
    )
    from homeclub.inventory.xlsx import units_import_xlsx

    rng = random.Random(ctx.seed + 6)
    project = ctx.nodes[FIRST_PROJECT.code]
    team = next(t for t in project_staff() if t.project == FIRST_PROJECT)
    manager = ctx.users[team.manager]
    consultants = [ctx.users[c] for c in team.consultants]
    now = timezone.now()

    # The units arrive as the sales office would bring them: one XLSX import.
    for sort, (name, *_rest) in enumerate(BUILDINGS):
        building_create(actor=manager, project=project, name=name, sort=sort)
    result = units_import_xlsx(actor=manager, project=project, data=_units_sheet())
    assert not result.errors, result.errors
    units: dict[str, list[Unit]] = {name: [] for name, *_rest in BUILDINGS}
    for unit in (
        Unit.objects.filter(project=project).select_related("building").order_by("floor", "number")
    ):
        units[unit.building.name].append(unit)
    release_batch_create(
        actor=manager,
        project=project,
        name="首批",
        units=units["1栋"],
        now=now - dt.timedelta(days=60),
    )
    second = units["2栋"]
    release_batch_create(actor=manager, project=project, name="加推", units=second[OPENING_UNITS:])
    # 3栋 stays unreleased. The current price list: 1栋 up 2% since last month.
    price_list_create(
        actor=manager,
        project=project,
        effective_at=now - dt.timedelta(days=30),
        name="2026年价格表",
        prices={
            u.pk: ((u.list_price * D("1.02")).quantize(D("1")), u.unit_price * D("1.02"))
            for u in units["1栋"]
        },
    )

    # Deals: each consultant sells to their own demo customers in the project, in turn;
    # the customers after them register pledges.
    owned = [
        list(Customer.objects.filter(project=project, owner=c).order_by("pk")[:40])
        for c in consultants
    ]
    pool = [
        (consultants[k], owned[k][j])
        for j in range(max(map(len, owned), default=0))
        for k in range(len(consultants))
        if j < len(owned[k])
    ]
    deals = min(DEALS, len(pool) // 2)
    for_sale = [u for u in units["1栋"] if u.floor >= 3] + second[OPENING_UNITS:]
    for i, unit in enumerate(rng.sample(for_sale, deals)):
        seller, buyer = pool[i]
        list_price, _item = unit_price_current(unit=unit, at=now)
        off = D("0.05") if i == 0 else D(rng.choice(["0", "0.005", "0.01", "0.015"]))
        sub = subscription_create(
            actor=seller,
            unit=unit,
            customer=buyer,
            agreed_price=(list_price * (1 - off)).quantize(D("1")),
            deposit=D("50000"),
            discount_note="开盘优惠" if off else "",
            now=now - dt.timedelta(days=rng.randint(0, 25), hours=rng.randint(0, 8)),
        )
        if i == 0 or i % 3:  # the first waits for approval; two in three stay subscribed
            continue
        contract = contract_sign(actor=seller, subscription=sub, number=f"SZ1-HT-{i:04d}")
        payment_record(
            actor=seller,
            contract=contract,
            kind="down",
            amount=(contract.price * D("0.3")).quantize(D("1")),
            paid_on=timezone.localdate() - dt.timedelta(days=rng.randint(0, 10)),
        )

    # Pledges, admitted to tomorrow's opening.
    pledges = [
        pledge_create(
            actor=seller,
            project=project,
            customer=customer,
            deposit=D("50000"),
            max_units=1 if i % 4 else 2,
        )
        for i, (seller, customer) in enumerate(pool[deals : deals + PLEDGES])
    ]
    member = Member.objects.filter(user=ctx.users.get("member")).select_related("customer")
    club_member = member.first()
    if club_member is not None:
        pledges.append(
            pledge_create(
                actor=manager,
                project=project,
                customer=club_member.customer,
                deposit=D("50000"),
                buyer=ctx.users["member"],
            )
        )
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    opening = opening_create(
        actor=manager,
        project=project,
        name="臻府2栋线上开盘",
        start_at=dt.datetime.combine(tomorrow, dt.time(10, 0), tzinfo=LOCAL_TZ),
        units=second[:OPENING_UNITS],
        pledges=pledges,
        hold_minutes=15,
    )
    for pledge in pledges[:6]:
        login = buyer_ensure(actor=manager, pledge=pledge)
        marks = rng.sample(second[:OPENING_UNITS], 3)
        favourites_set(actor=login, opening=opening, pledge=pledge, unit_ids=[u.pk for u in marks])


def _units_sheet() -> bytes:
    """The three buildings' units as the import sheet (columns of ``inventory.xlsx``)."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    row = 1
    for name, floors, per_floor, base in BUILDINGS:
        layouts = LAYOUTS_3 if name == "3栋" else LAYOUTS
        for floor in range(1, floors + 1):
            for n in range(1, per_floor + 1):
                layout, gross, net, facing = layouts[0 if n in (1, per_floor) else 1]
                price = D(base + 400 * floor)
                sheet.write_row(
                    row,
                    0,
                    [
                        name,
                        f"{name[0]}-{floor}{n:02d}",
                        floor,
                        layout,
                        gross,
                        net,
                        facing,
                        str((price * D(gross)).quantize(D("1"))),
                        str(price),
                    ],
                )
                row += 1
    book.close()
    return buffer.getvalue()
