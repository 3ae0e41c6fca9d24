"""A channel world: a manager of Shenzhen, two agencies contracted to 滨海府 (sz1), agents of
each, a crowd agent, and reception staff to register visits."""

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from homeclub.channels.models import Agency, Agent, Report
from homeclub.channels.services import (
    agency_contract_create,
    agency_create,
    agent_create,
    report_create,
)
from homeclub.sales.reception import visit_register
from homeclub.sales.ruleset import ruleset_create
from tests.api.conftest import api_for

__all__ = ["api_for"]


class World:
    org: Any
    manager: Any
    reception: Any
    lianjia: Agency
    woai: Agency
    a1: Agent  # 链家
    a2: Agent  # 链家
    b1: Agent  # 我爱我家
    crowd: Agent
    _n = 0

    def agent(self, agency: Agency | None) -> Agent:
        World._n += 1
        return agent_create(
            actor=self.manager,
            username=f"agent{World._n}",
            name=f"经纪人{World._n}",
            mobile=f"137{World._n:08d}",
            agency=agency,
            password="pw-123456",
        )

    def report(self, agent: Agent, phone: str, project: Any = None, **kw: Any) -> Report:
        return report_create(
            actor=agent.user,
            project=project or self.org.sz1,
            customer_name=kw.pop("customer_name", "王先生"),
            phone=phone,
            **kw,
        )

    def visit(self, phone: str, agent: Agent | None = None, project: Any = None, **kw: Any) -> Any:
        visit, _created = visit_register(
            actor=self.reception,
            project=project or self.org.sz1,
            phone=phone,
            name=kw.pop("name", "王先生"),
            kind="agent" if agent is not None else kw.pop("kind", "walk_in"),
            agent=agent.user if agent is not None else None,
            **kw,
        )
        return visit

    def rules(self, project: Any = None, **values: Any) -> Any:
        return ruleset_create(
            actor=self.manager,
            project=project or self.org.sz1,
            valid_from=timezone.now() - dt.timedelta(days=400),
            **values,
        )


def age(report: Report, **delta: float) -> Report:
    """Move a report back in time, as if made ``delta`` ago (its window moves with it)."""
    shift = dt.timedelta(**delta)
    Report.objects.filter(pk=report.pk).update(
        reported_at=report.reported_at - shift,
        protected_until=report.protected_until - shift if report.protected_until else None,
        created_at=report.created_at - shift,
    )
    return Report.objects.get(pk=report.pk)


@pytest.fixture
def world(org: Any, make_user: Any) -> World:
    w = World()
    w.org = org
    w.manager = make_user("channel_manager", org.sz)
    w.reception = make_user("sales_manager", org.sz1)
    w.lianjia = agency_create(actor=w.manager, name="链家", licence_no="91440300MA5")
    w.woai = agency_create(actor=w.manager, name="我爱我家")
    start = timezone.localdate() - dt.timedelta(days=30)
    agency_contract_create(actor=w.manager, agency=w.lianjia, project=org.sz1, starts_on=start)
    agency_contract_create(actor=w.manager, agency=w.woai, project=org.sz1, starts_on=start)
    w.a1 = w.agent(w.lianjia)
    w.a2 = w.agent(w.lianjia)
    w.b1 = w.agent(w.woai)
    w.crowd = w.agent(None)
    return w


@pytest.fixture
def aged() -> Callable[..., Report]:
    return age
