"""The claim source the sales office asks at every visit."""

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from homeclub.channels.claims import report_claims
from homeclub.channels.models import Report
from homeclub.channels.rules import parse_reported_phone, phone_key_of, phone_keys
from homeclub.channels.services import AlreadyReported
from homeclub.common.phones import InvalidPhone
from homeclub.sales.claims import claim_sources
from homeclub.sales.rules import ClaimKind

pytestmark = pytest.mark.django_db


def test_registered_with_the_sales_office() -> None:
    assert claim_sources()["channel_report"] is report_claims


def test_phone_keys() -> None:
    assert phone_key_of("+8613812345678") == "1385678"
    assert phone_key_of("+862012345678") is None  # a landline
    assert phone_key_of("+85291234567") is None
    assert phone_keys(["+8613812345678", "+862012345678"]) == {"1385678": "+8613812345678"}
    assert parse_reported_phone("+86 138-1234-5678").e164 == "+8613812345678"
    masked = parse_reported_phone(" 138 **** 5678 ")
    assert masked.masked and masked.key == "1385678" and masked.display == "138****5678"
    for bad in ("128****5678", "138***5678", "13*****5678", "138****567x"):
        with pytest.raises(InvalidPhone):
            parse_reported_phone(bad)


def test_claims_match_full_and_masked_reports_of_the_customers_phones(
    world: Any, django_assert_num_queries: Any
) -> None:
    world.rules(allow_masked_reports=True)
    full = world.report(world.a1, "13812345678")
    masked = world.report(world.crowd, "139****1111")
    with pytest.raises(AlreadyReported):  # same key as `full` where masks are allowed
        world.report(world.b1, "13899995678")
    # a *full* report of another number under one of the customer's keys does not match
    other_number = world.report(world.b1, "13700002222")
    Report.objects.filter(pk=other_number.pk).update(
        phone_key="1391111", phone_e164="+8613900001111", protecting=False
    )
    phones = ["+8613812345678", "+8613966661111", "+862012345678"]
    at = timezone.now() + dt.timedelta(seconds=1)
    with django_assert_num_queries(1):
        claims = report_claims.claims(
            customer_id=1, phones=phones, project_id=world.org.sz1.pk, at=at
        )
    assert [c.ref for c in claims] == [f"channel.report:{full.pk}", f"channel.report:{masked.pk}"]
    c = claims[0]
    assert c.kind == ClaimKind.CHANNEL_REPORT and c.made_at == full.reported_at
    assert c.claimant_id == world.a1.user_id and c.label == f"链家 · {world.a1.user.name}"
    assert c.agency_active and not c.accompanied and c.expires_at == full.protected_until
    assert claims[1].label.endswith(world.crowd.user.name)
    # not before the report was made, not in another project
    assert not report_claims.claims(
        customer_id=1,
        phones=phones,
        project_id=world.org.sz1.pk,
        at=full.reported_at - dt.timedelta(seconds=1),
    )
    assert not report_claims.claims(
        customer_id=1, phones=phones, project_id=world.org.sz2.pk, at=at
    )
    assert report_claims.claims(customer_id=1, phones=["+862012345678"], project_id=1, at=at) == []


def test_claims_skip_closed_reports(world: Any) -> None:
    r = world.report(world.a1, "13812345678")
    at = timezone.now() + dt.timedelta(seconds=1)
    for status in ("expired", "invalid", "rejected", "signed"):
        Report.objects.filter(pk=r.pk).update(status=status, protecting=False)
        assert not report_claims.claims(
            customer_id=1, phones=["+8613812345678"], project_id=world.org.sz1.pk, at=at
        ), status
