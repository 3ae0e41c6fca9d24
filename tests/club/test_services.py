import datetime as dt
from typing import Any

import pytest

from homeclub.club.models import Member
from homeclub.club.rules import age_on, card_payload, member_number_for, parse_card_payload
from homeclub.club.selectors import member_lookup
from homeclub.club.services import member_close, member_freeze, member_join, member_unfreeze
from homeclub.common.errors import Conflict, NotFound, ValidationFailed
from homeclub.common.idnumbers import check_char
from homeclub.common.models import AuditEvent
from tests.points.helpers import make_customer

TODAY = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def id_number(birth: dt.date) -> str:
    first17 = f"440305{birth:%Y%m%d}123"
    return first17 + check_char(first17)


def test_age_counts_completed_years() -> None:
    assert age_on(dt.date(2008, 6, 1), dt.date(2026, 6, 1)) == 18
    assert age_on(dt.date(2008, 6, 2), dt.date(2026, 6, 1)) == 17
    assert age_on(dt.date(2008, 2, 29), dt.date(2026, 2, 28)) == 17
    assert member_number_for(42) == "HC00000042"
    assert parse_card_payload(card_payload("HC00000042", "tok")) == ("HC00000042", "tok")
    assert parse_card_payload("nonsense") is None


def test_adult_joins_with_number_card_and_audit(org: Any, units: Any) -> None:
    customer = make_customer(org.sz1, birth=dt.date(2008, 6, 1))
    member = member_join(actor=None, customer=customer, business_unit=units["commercial"], at=TODAY)
    member.refresh_from_db()
    assert member.number == f"HC{member.pk:08d}"
    assert member.status == Member.Status.ACTIVE
    assert member.card_payload == f"HCM1:{member.number}:{member.card_token}"
    assert AuditEvent.objects.filter(object_type="club.member", action="create").count() == 1


def test_age_from_id_number_and_minors_refused(org: Any, units: Any) -> None:
    adult = make_customer(org.sz1, id_number=id_number(dt.date(1990, 1, 1)))
    adult.birth_date = None
    adult.save()
    assert member_join(actor=None, customer=adult, business_unit=units["hotel"], at=TODAY)
    minor = make_customer(org.sz1, birth=dt.date(2008, 6, 2))
    with pytest.raises(ValidationFailed) as exc:
        member_join(actor=None, customer=minor, business_unit=units["hotel"], at=TODAY)
    assert exc.value.code == "not_adult"
    unknown = make_customer(org.sz1)
    unknown.birth_date = None
    unknown.save()
    with pytest.raises(ValidationFailed) as exc:
        member_join(actor=None, customer=unknown, business_unit=units["hotel"], at=TODAY)
    assert exc.value.code == "age_unknown"


def test_one_membership_per_person(org: Any, units: Any) -> None:
    customer = make_customer(org.sz1)
    member_join(actor=None, customer=customer, business_unit=units["residential"])
    with pytest.raises(Conflict) as exc:
        member_join(actor=None, customer=customer, business_unit=units["hotel"])
    assert exc.value.code == "already_member"


def test_freeze_unfreeze_close(org: Any, units: Any, make_user: Any) -> None:
    operator = make_user("club_operator", org.group)
    member = member_join(
        actor=operator, customer=make_customer(org.sz1), business_unit=units["residential"]
    )
    member_freeze(actor=operator, member=member, reason="可疑")
    assert member.status == "frozen"
    member_unfreeze(actor=operator, member=member)
    member_close(actor=operator, member=member, reason="本人申请")
    assert Member.objects.get(pk=member.pk).status == "closed"
    with pytest.raises(Conflict):
        member_freeze(actor=operator, member=member)
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"member_freeze", "member_unfreeze", "member_close"} <= actions


def test_lookup_is_scoped(org: Any, units: Any, make_user: Any) -> None:
    member = member_join(
        actor=None, customer=make_customer(org.sz1), business_unit=units["residential"]
    )
    sz = make_user("club_operator", org.sz)
    gz = make_user("club_operator", org.gz)
    assert member_lookup(viewer=sz, phone=member.customer.mobile).pk == member.pk
    assert member_lookup(viewer=sz, number=member.number.lower()).pk == member.pk
    assert member_lookup(viewer=sz, card=member.card_payload).pk == member.pk
    with pytest.raises(NotFound):
        member_lookup(viewer=sz, card=f"HCM1:{member.number}:wrong")
    with pytest.raises(NotFound):
        member_lookup(viewer=gz, number=member.number)
