"""SMS-code sign-in under real parallel connections (PostgreSQL only): parallel guesses
never get more than CODE_ATTEMPTS tries, the right code sent many times at once signs
in once, and parallel first requests for one phone send one SMS."""

import datetime as dt
import re
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from homeclub.inventory.buyers import CODE_ATTEMPTS, signin_code_send, signin_code_use
from homeclub.inventory.models import BuyerSignInCode
from homeclub.messaging.models import OutboundMessage
from homeclub.org.models import User
from tests.concurrency.threads import run_concurrently

from .conftest import make_site

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgres_only(db: object) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (real concurrent connections)")


def _setup(org: Any, make_user: Any) -> tuple[Any, str]:
    site = make_site(org, make_user)
    pledge = site.pledge(customer=site.customer_new())
    opening = site.opening(
        site.units[:4], [pledge], start_at=timezone.now() + dt.timedelta(hours=1)
    )
    return opening, pledge.customer.mobile.removeprefix("+86")


def _code(phone: str) -> str:
    body = OutboundMessage.objects.filter(recipient__endswith=phone).latest("id").body
    found = re.search(r"\b(\d{6})\b", body)
    assert found
    return found.group(1)


def test_parallel_guesses_and_uses(org: Any, make_user: Any) -> None:
    opening, phone = _setup(org, make_user)
    signin_code_send(opening=opening, phone=phone)
    code = _code(phone)
    wrong = "000000" if code != "000000" else "111111"
    results = run_concurrently(
        *[lambda: signin_code_use(opening=opening, phone=phone, code=wrong)] * 12
    )
    codes = sorted(getattr(r, "code", "?") for r in results)
    assert codes.count("code_wrong") == CODE_ATTEMPTS
    assert codes.count("code_spent") == 12 - CODE_ATTEMPTS
    assert BuyerSignInCode.objects.get().attempts == CODE_ATTEMPTS

    # a fresh code, submitted 8 times at once: one sign-in
    BuyerSignInCode.objects.update(sent_at=timezone.now() - dt.timedelta(minutes=2))
    signin_code_send(opening=opening, phone=phone)
    code = _code(phone)
    results = run_concurrently(
        *[lambda: signin_code_use(opening=opening, phone=phone, code=code)] * 8
    )
    assert sum(isinstance(r, User) for r in results) == 1, results


def test_parallel_first_requests_send_one_code(org: Any, make_user: Any) -> None:
    opening, phone = _setup(org, make_user)
    results = run_concurrently(*[lambda: signin_code_send(opening=opening, phone=phone)] * 8)
    assert sum(isinstance(r, str) for r in results) == 1, results
    assert all(getattr(r, "status", 429) == 429 for r in results if not isinstance(r, str))
    assert OutboundMessage.objects.filter(channel="sms").count() == 1
    assert BuyerSignInCode.objects.count() == 1
