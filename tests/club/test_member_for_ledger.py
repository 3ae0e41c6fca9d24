"""``member_get_for_ledger``: the member a points award or redemption is for, by id or
number, within the caller's scope — on PostgreSQL from a plan compiled once per scope;
the answers must be exactly the ORM's (``get_scoped``) for every viewer and lookup."""

from typing import Any

import pytest
from django.db import connection

from homeclub.club.models import Member
from homeclub.club.selectors import _LEDGER_FIELDS, member_get_for_ledger
from homeclub.common.errors import NotFound
from homeclub.org.scoping import get_scoped
from tests.points.helpers import make_member


def _orm(viewer: Any, **lookup: Any) -> Member | None:
    try:
        return get_scoped(Member.objects.only(*_LEDGER_FIELDS), viewer, **lookup)
    except NotFound:
        return None


def _fast(viewer: Any, **lookup: Any) -> Member | None:
    try:
        return member_get_for_ledger(viewer=viewer, **lookup)
    except NotFound:
        return None


@pytest.fixture
def members(org: Any, units: Any) -> list[Member]:
    return [
        make_member(org.sz1, units["commercial"]),
        make_member(org.sz2, units["commercial"]),
        make_member(org.gz1, units["commercial"]),
    ]


@pytest.mark.parametrize(
    ("role", "node"),
    [
        ("club_operator", "group"),
        ("club_operator", "sz"),
        ("customer_service", "sz1"),
        ("sales_manager", "gz1"),
        ("analyst", "group"),
    ],
)
def test_the_same_member_or_none_as_the_orm_for_every_viewer(
    org: Any, make_user: Any, members: list[Member], role: str, node: str
) -> None:
    viewer = make_user(role, getattr(org, node))
    seen = 0
    for member in members:
        for lookup in ({"pk": member.pk}, {"number": member.number}):
            for _twice in range(2):  # the second call runs the cached plan
                want, got = _orm(viewer, **lookup), _fast(viewer, **lookup)
                assert (got and got.pk) == (want and want.pk), (role, node, lookup)
                if got is not None:
                    assert (got.number, got.status) == (member.number, member.status)
                    assert got.get_deferred_fields() == {
                        f.attname
                        for f in Member._meta.concrete_fields
                        if f.attname not in _LEDGER_FIELDS
                    }
                    seen += 1
    assert seen > 0


def test_lowercase_number_unknown_id_and_odd_values(
    org: Any, make_user: Any, members: list[Member]
) -> None:
    viewer = make_user("club_operator", org.group)
    member = members[0]
    assert member_get_for_ledger(viewer=viewer, number=f" {member.number.lower()} ").pk == member.pk
    for lookup in ({"pk": 10**12}, {"pk": 0}, {"pk": 2**70}, {"pk": "abc"}, {"number": "NOPE"}):
        with pytest.raises(NotFound):
            member_get_for_ledger(viewer=viewer, **lookup)


def test_a_warm_lookup_is_one_statement(
    org: Any, make_user: Any, members: list[Member], django_assert_num_queries: Any
) -> None:
    viewer = make_user("club_operator", org.sz)
    connection.__dict__.pop("_homeclub_member_plans", None)  # other tests' plans
    member_get_for_ledger(viewer=viewer, pk=members[0].pk)  # compiles the plan
    with django_assert_num_queries(1):
        assert member_get_for_ledger(viewer=viewer, pk=members[1].pk).pk == members[1].pk
    with django_assert_num_queries(1), pytest.raises(NotFound):
        member_get_for_ledger(viewer=viewer, pk=members[2].pk)  # Guangzhou: out of scope
    if connection.vendor == "postgresql":
        plans = connection.__dict__["_homeclub_member_plans"]
        assert len([k for k in plans if k[1] == "pk"]) == 1


def test_viewers_of_other_scopes_alternating_each_get_their_own_answer(
    org: Any, make_user: Any, members: list[Member]
) -> None:
    wide = make_user("club_operator", org.group)
    narrow = make_user("club_operator", org.gz)
    for _round in range(2):
        assert _fast(wide, pk=members[0].pk) is not None
        assert _fast(narrow, pk=members[0].pk) is None  # Shenzhen's, not Guangzhou's
        assert _fast(narrow, pk=members[2].pk) is not None
        assert _fast(narrow, number=members[1].number) is None
        assert _fast(wide, number=members[1].number) is not None
