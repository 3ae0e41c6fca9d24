"""The demo's sales control: buildings and units in every state, a price list, deals,
pledges and a future online opening whose buyer page (the ``member`` login) counts down."""

import time
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from homeclub.demo import inventory_demo
from homeclub.demo.dataset import FIRST_PROJECT
from homeclub.demo.seeding import demo_seed
from homeclub.inventory.models import (
    Building,
    Contract,
    Favourite,
    Opening,
    Pledge,
    PriceList,
    Subscription,
    Unit,
)
from homeclub.inventory.selectors import board_snapshot
from homeclub.org.models import OrgNode, User

pytestmark = pytest.mark.django_db


def test_demo_has_sales_control_and_an_opening(db: Any, monkeypatch: Any) -> None:
    spent: list[float] = []
    step = inventory_demo.seed_inventory

    def timed(ctx: Any) -> None:
        start = time.perf_counter()
        step(ctx)
        spent.append(time.perf_counter() - start)

    monkeypatch.setattr(inventory_demo, "seed_inventory", timed)
    demo_seed(customers=120)
    assert spent and spent[0] < 5, spent
    print(f"inventory demo step: {spent[0]:.2f} s")

    project = OrgNode.objects.get(code=FIRST_PROJECT.code)
    assert Building.objects.filter(project=project).count() == 3
    states = {
        s: Unit.objects.filter(project=project, status=s).count()
        for s in ("unreleased", "available", "held", "subscribed", "signed")
    }
    assert sum(states.values()) == 150
    assert all(states.values()), states  # every state is on the board
    assert PriceList.objects.filter(project=project).exists()
    assert Subscription.objects.filter(project=project, status="pending_approval").count() == 1
    assert Contract.objects.filter(project=project, paid_total__gt=0).exists()

    # the board shows the units (and the day's sell-through)
    _version, board = board_snapshot(project_id=project.pk)
    cells = [u for b in board["buildings"] for f in b["floors"] for u in f["units"]]
    assert len(cells) == 150

    opening = Opening.objects.get(project=project)
    assert opening.start_at > timezone.now()
    assert Unit.objects.filter(opening=opening).count() == inventory_demo.OPENING_UNITS
    assert opening.pledges.count() >= 5
    assert Favourite.objects.filter(opening=opening).exists()
    member = User.objects.get(username="member")
    assert Pledge.objects.filter(buyer=member, admissions__opening=opening).exists()
    phone = Client()
    phone.force_login(member)
    page = phone.get(f"/inventory/openings/{opening.pk}/")
    assert page.status_code == 200 and 'data-testid="countdown"' in page.content.decode()
    manager = Client()
    manager.force_login(User.objects.get(username="manager"))
    html = manager.get(f"/inventory/board/{project.pk}/").content.decode()
    assert html.count("data-unit=") >= 150


@pytest.mark.parametrize("customers", [0, 60])
def test_small_demos_still_get_a_board(db: Any, customers: int) -> None:
    demo_seed(customers=customers)
    project = OrgNode.objects.get(code=FIRST_PROJECT.code)
    assert Unit.objects.filter(project=project).count() == 150
    assert Opening.objects.filter(project=project).count() == 1
