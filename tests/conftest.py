"""Shared fixtures: a small org tree and a user factory for every role."""

from collections.abc import Callable
from typing import Any

import pytest

from homeclub.org.models import OrgNode, User
from homeclub.org.services import org_node_create, user_create


class Org:
    """group → 2 cities → 2 projects each."""

    group: OrgNode
    sz: OrgNode
    gz: OrgNode
    sz1: OrgNode
    sz2: OrgNode
    gz1: OrgNode
    gz2: OrgNode


@pytest.fixture
def org(db: Any) -> Org:
    o = Org()
    o.group = org_node_create(actor=None, kind="group", code="grp", name="示例集团")
    o.sz = org_node_create(
        actor=None, kind="city", code="sz", name="深圳公司", parent=o.group, city_name="深圳"
    )
    o.gz = org_node_create(
        actor=None, kind="city", code="gz", name="广州公司", parent=o.group, city_name="广州"
    )
    o.sz1 = org_node_create(actor=None, kind="project", code="sz-bay", name="滨海府", parent=o.sz)
    o.sz2 = org_node_create(actor=None, kind="project", code="sz-park", name="公园里", parent=o.sz)
    o.gz1 = org_node_create(actor=None, kind="project", code="gz-river", name="江畔", parent=o.gz)
    o.gz2 = org_node_create(actor=None, kind="project", code="gz-hill", name="云山", parent=o.gz)
    return o


@pytest.fixture
def make_user(db: Any) -> Callable[..., User]:
    counter = {"n": 0}

    def make(
        role: str, *nodes: OrgNode, username: str | None = None, password: str = "pw-123456"
    ) -> User:
        counter["n"] += 1
        return user_create(
            actor=None,
            username=username or f"{role}{counter['n']}",
            password=password,
            role=role,
            name=f"{role}-{counter['n']}",
            org_nodes=nodes,
        )

    return make
