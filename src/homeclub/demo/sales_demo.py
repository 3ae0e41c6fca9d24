"""Demo sales office: today's rotation in every project, and three weeks of visits at the
first Shenzhen project (the named logins' project), registered through reception as a
receptionist would, so attribution, assignment, pipeline and timeline rows are all real."""

import datetime as dt
import random
from typing import TYPE_CHECKING

from django.utils import timezone

from homeclub.customers.models import Customer, CustomerProject
from homeclub.org.models import User

from .dataset import FIRST_PROJECT, project_staff

if TYPE_CHECKING:
    from .seeding import DemoContext

VISITS = 24


def seed_channels(ctx: "DemoContext") -> None:
    """One agency with a contract in every project; the ``agent`` login is its broker."""
    from homeclub.channels.services import (
        agency_contract_create,
        agency_create,
        agent_profile_create,
    )

    admin = ctx.users["admin"]
    agency = agency_create(
        actor=admin,
        name="示例房产经纪有限公司",
        contact_name="周经理",
        contact_phone="075588886666",
    )
    start = timezone.localdate() - dt.timedelta(days=365)
    for team in project_staff():
        agency_contract_create(
            actor=admin, agency=agency, project=ctx.nodes[team.project.code], starts_on=start
        )
    agent = ctx.users["agent"]
    agent_profile_create(
        actor=admin, user=agent, mobile=agent.mobile or "16600000001", agency=agency
    )


def seed_sales_office(ctx: "DemoContext") -> None:
    from homeclub.sales.assignment import duty_set
    from homeclub.sales.models import MediaSource, VisitKind
    from homeclub.sales.pipeline import stage_set
    from homeclub.sales.reception import visit_register

    rng = random.Random(ctx.seed)
    for team in project_staff():
        project = ctx.nodes[team.project.code]
        manager = ctx.users[team.manager]
        consultants = [ctx.users[c] for c in team.consultants]
        duty_set(actor=manager, project=project, consultants=consultants)
    first = next(t for t in project_staff() if t.project == FIRST_PROJECT)
    project = ctx.nodes[FIRST_PROJECT.code]
    manager = ctx.users[first.manager]
    now = timezone.now()
    media = [m for m, _label in MediaSource.choices]
    # Visitors are this project's demo customers already in the archive, so the archive
    # keeps exactly the planned people and links.
    pool = list(
        Customer.objects.filter(project=project, owner__isnull=False)
        .order_by("pk")
        .values_list("mobile", flat=True)[:400]
    )
    visitors = rng.sample(pool, min(VISITS, len(pool)))
    for i, phone in enumerate(visitors):
        at = now - dt.timedelta(days=rng.randint(1, 20), hours=rng.randint(0, 8))
        if i == len(visitors) - 1:
            at = now - dt.timedelta(minutes=40)
        visit, _created = visit_register(
            actor=manager,
            project=project,
            phone=phone,
            kind=rng.choice([VisitKind.WALK_IN, VisitKind.WALK_IN, VisitKind.CALL]),
            party_size=rng.randint(1, 4),
            media_source=rng.choice(media),
            visited_at=at,
        )
        link = CustomerProject.objects.get(customer=visit.customer, project=project)
        owner = User.objects.get(pk=link.owner_id) if link.owner_id else manager
        if i % 3 == 0:
            stage_set(actor=owner, link=link, stage="intent", intent_grade=rng.choice("ABCD"))
        elif i % 7 == 0:
            stage_set(actor=owner, link=link, stage="lost", reason="预算不足")


def seed_club(ctx: "DemoContext") -> None:
    """Rates and a point value, members with some points (the ``member`` login is one of
    them) and a small rewards catalogue, all through the domains' services."""
    from decimal import Decimal

    from homeclub.club.services import member_join
    from homeclub.org.models import BusinessUnit
    from homeclub.points.services import earn_rate_set, point_value_set, points_award
    from homeclub.rewards.catalogue import item_create

    admin = ctx.users["admin"]
    start = timezone.now() - dt.timedelta(days=400)
    units = {bu.code: bu for bu in BusinessUnit.objects.all()}
    rates = {"residential": "1000", "commercial": "1", "hotel": "2", "property": "1"}
    for code, rate in rates.items():
        if code in units:
            earn_rate_set(
                actor=admin, business_unit=units[code], points_per_unit=rate, valid_from=start
            )
    point_value_set(actor=admin, yuan_per_point=Decimal("0.10"), valid_from=start)
    home = units.get("residential") or next(iter(units.values()), None)
    if home is None:
        return
    candidates = list(
        Customer.objects.filter(
            birth_date__isnull=False, birth_date__lt=dt.date(2000, 1, 1)
        ).order_by("pk")[:12]
    )
    member_user = ctx.users.get("member")
    for i, customer in enumerate(candidates):
        member = member_join(
            actor=admin,
            customer=customer,
            business_unit=home,
            user=member_user if i == 0 else None,
        )
        points_award(
            actor=admin,
            member=member,
            business_unit=units.get("commercial", home),
            source_type="demo.receipt",
            source_id=f"demo-{member.pk}",
            points=500 + 100 * i,
            reason="商场消费",
        )
    item_create(
        actor=admin, kind="gift", name="定制保温杯", points_price=300, stock=50, per_member_limit=2
    )
    item_create(actor=admin, kind="parking", name="商场停车券（2小时）", points_price=100)
    item_create(actor=admin, kind="fee_offset", name="物业费抵扣 50 元", yuan_value=Decimal("50"))
