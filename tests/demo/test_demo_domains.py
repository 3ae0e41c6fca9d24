"""The demo shows every working domain with data: the sales office, channels, the club."""

from typing import Any

import pytest

from homeclub.channels.models import AgencyContract, Agent
from homeclub.club.models import Member
from homeclub.demo.seeding import demo_seed
from homeclub.org.models import OrgNode, User
from homeclub.points.models import Account
from homeclub.rewards.models import Item
from homeclub.sales.models import Attribution, DutySlot, Visit

pytestmark = pytest.mark.django_db


def test_demo_has_sales_channels_and_club_data(db: Any) -> None:
    demo_seed(customers=80)
    projects = OrgNode.objects.filter(kind="project").count()
    assert DutySlot.objects.values("duty_day__project").distinct().count() == projects
    assert Visit.objects.count() >= 10
    assert Attribution.objects.filter(is_current=True).count() >= 10
    agent = Agent.objects.get(user__username="agent")
    assert AgencyContract.objects.filter(agency=agent.agency).count() == projects
    member = Member.objects.get(user=User.objects.get(username="member"))
    assert Account.objects.get(member=member).balance > 0
    assert Member.objects.count() >= 5
    assert set(Item.objects.values_list("kind", flat=True)) == {"gift", "parking", "fee_offset"}
