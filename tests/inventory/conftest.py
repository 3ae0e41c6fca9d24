"""A project with one building of released units, a manager, a consultant, a customer."""

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from homeclub.customers.services import customer_create
from homeclub.inventory.models import Building, Opening, Pledge, Unit
from homeclub.inventory.openings import opening_create
from homeclub.inventory.services import (
    building_create,
    pledge_create,
    release_batch_create,
    unit_create,
)


class Site:
    project: Any
    manager: Any
    consultant: Any
    customer: Any
    building: Building
    units: list[Unit]
    _n = 0

    def customer_new(self) -> Any:
        Site._n += 1
        return customer_create(
            actor=self.manager,
            name=f"客户{Site._n}",
            mobile=f"139{Site._n:08d}",
            project=self.project,
        )

    def unit(self, i: int) -> Unit:
        return Unit.objects.get(pk=self.units[i].pk)

    def pledge(self, max_units: int = 1, **kw: Any) -> Pledge:
        return pledge_create(
            actor=self.manager,
            project=self.project,
            customer=kw.pop("customer", self.customer),
            deposit=Decimal("50000"),
            max_units=max_units,
            **kw,
        )

    def opening(
        self,
        units: list[Unit],
        pledges: list[Pledge],
        start_at: dt.datetime | None = None,
        hold_minutes: int = 15,
    ) -> Opening:
        return opening_create(
            actor=self.manager,
            project=self.project,
            name="首开",
            start_at=start_at or timezone.now() - dt.timedelta(minutes=1),
            units=units,
            pledges=pledges,
            hold_minutes=hold_minutes,
        )


def make_site(org: Any, make_user: Any, *, units: int = 6, release: int = 4) -> Site:
    s = Site()
    s.project = org.sz1
    s.manager = make_user("sales_manager", org.sz1)
    s.consultant = make_user("sales_consultant", org.sz1)
    s.customer = s.customer_new()
    s.building = building_create(actor=s.manager, project=s.project, name="1栋")
    s.units = [
        unit_create(
            actor=s.manager,
            building=s.building,
            number=f"1-{(i // 2) + 1:02d}0{(i % 2) + 1}",
            floor=(i // 2) + 1,
            layout="3室2厅" if i % 2 == 0 else "2室2厅",
            gross_area="100.00",
            net_area="80.00",
            orientation="S",
            list_price="1000000",
            unit_price="10000",
        )
        for i in range(units)
    ]
    if release:
        release_batch_create(
            actor=s.manager, project=s.project, name="一批", units=s.units[:release]
        )
    return s


@pytest.fixture
def site(org: Any, make_user: Any) -> Site:
    return make_site(org, make_user)


@pytest.fixture
def site_factory(org: Any, make_user: Any) -> Callable[..., Site]:
    return lambda **kw: make_site(org, make_user, **kw)


@pytest.fixture
def api_for(db: Any) -> Callable[..., Any]:
    from homeclub.api.services import api_token_create
    from tests.api.conftest import Api

    def make(user: Any) -> Api:
        _token, raw = api_token_create(actor=user, user=user, name="test")
        return Api(raw)

    return make


@pytest.fixture(autouse=True)
def _fresh_cache() -> Any:
    """Snapshots live in the cache; ids repeat between tests, so start each one empty."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
