"""The QR member card: signed short-lived tokens, the member's own page, the scanner API."""

import time
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from django.core import signing
from django.test import Client
from django.urls import include, path

from homeclub.club.card import CardQuery, card_qr_svg, card_token_issue, card_token_verify
from homeclub.club.card import card_verify as card_verify_endpoint
from homeclub.common.errors import Forbidden, ValidationFailed
from homeclub.common.models import AuditEvent
from homeclub.org.roles import Role
from homeclub.points.services import points_award
from tests.points.helpers import make_member

# Until the lead mounts ``homeclub.club.urls`` at /club/ in the root URLconf, these tests
# bring their own (the same include the root will have).
urlpatterns = [
    path("club/", include("homeclub.club.urls")),
    path("", include("homeclub.urls")),
]


@pytest.fixture
def member(org: Any, units: Any) -> Any:
    m = make_member(org.sz1, units["commercial"])
    points_award(
        actor=None,
        member=m,
        business_unit=units["commercial"],
        points=42,
        source_type="seed",
        source_id="card",
    )
    return m


def test_token_round_trip(member: Any) -> None:
    token = card_token_issue(member)
    assert card_token_verify(token) == member
    assert member.card_token not in token  # the card's secret is not in the code


def test_token_expires(member: Any) -> None:
    token = card_token_issue(member)
    later = time.time() + 301
    with mock.patch("time.time", return_value=later), pytest.raises(ValidationFailed) as exc:
        card_token_verify(token)
    assert exc.value.code == "card_expired"


@pytest.mark.parametrize("how", ["value", "signature", "garbage", "other_salt"])
def test_tampered_token_is_refused(member: Any, how: str) -> None:
    token = card_token_issue(member)
    if how == "value":
        token = f"{member.pk + 1}" + token[len(str(member.pk)) :]
    elif how == "signature":
        token = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    elif how == "garbage":
        token = "not a token"
    else:
        token = signing.TimestampSigner(salt="other").sign(f"{member.pk}.x")
    with pytest.raises(ValidationFailed) as exc:
        card_token_verify(token)
    assert exc.value.code == "card_invalid"


def test_a_new_card_voids_old_tokens(member: Any) -> None:
    token = card_token_issue(member)
    member.card_token = "rotated"
    member.save(update_fields=["card_token"])
    with pytest.raises(ValidationFailed) as exc:
        card_token_verify(token)
    assert exc.value.code == "card_invalid"


def test_qr_is_svg() -> None:
    svg = card_qr_svg("x" * 60)
    assert svg.startswith("<svg") and "</svg>" in svg


@pytest.mark.urls("tests.club.test_card")
def test_card_page_only_for_the_member_themself(
    member: Any, org: Any, make_user: Any, client: Client
) -> None:
    owner = make_user(Role.MEMBER)
    member.user = owner
    member.save(update_fields=["user"])
    client.force_login(owner)
    page = client.get("/club/card/")
    assert page.status_code == 200
    body = page.content.decode()
    assert member.number in body and "<svg" in body
    assert 'data-testid="balance">42<' in body
    assert client.get(f"/club/members/{member.pk}/card/").status_code == 200
    assert client.get("/club/card/qr/").status_code == 200

    other_member = make_member(org.sz1, member.joined_business_unit)
    assert client.get(f"/club/members/{other_member.pk}/card/").status_code == 404
    stranger = make_user(Role.MEMBER)
    client.force_login(stranger)
    assert client.get("/club/card/").status_code == 404
    assert client.get(f"/club/members/{member.pk}/card/").status_code == 404
    staff = make_user(Role.CLUB_OPERATOR, org.group)
    client.force_login(staff)
    assert client.get(f"/club/members/{member.pk}/card/").status_code == 404


def _req(user: Any) -> Any:
    return SimpleNamespace(auth=user)


def test_scanner_endpoint(member: Any, org: Any, make_user: Any) -> None:
    merchant = make_user(Role.MERCHANT_STAFF)
    token = card_token_issue(member)
    data = card_verify_endpoint(_req(merchant), CardQuery(token=token))
    assert data["number"] == member.number and data["status"] == "active"
    assert "****" in data["mobile"] and member.customer.mobile not in str(data)
    assert AuditEvent.objects.filter(action="club_card_verify").count() == 1
    with pytest.raises(ValidationFailed) as exc:
        card_verify_endpoint(_req(merchant), CardQuery(token=token + "x"))
    assert exc.value.code == "card_invalid"
    analyst = make_user(Role.ANALYST, org.group)
    with pytest.raises(Forbidden):
        card_verify_endpoint(_req(analyst), CardQuery(token=token))
