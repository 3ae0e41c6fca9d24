"""The buyer's side of an online opening: sign-in link, own pledge only, overload,
the cached availability, favourites and heat map, similar units, follow-up list."""

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from homeclub.inventory import admission
from homeclub.inventory.buyers import (
    buyer_ensure,
    favourite_heat,
    favourites_set,
    followup_list,
    signin_link_send,
    signin_link_use,
    similar_units,
)
from homeclub.inventory.models import BuyerSignIn, OpeningPick, PickStatus, Unit
from homeclub.inventory.openings import opening_close, opening_pick
from homeclub.messaging.models import OutboundMessage

pytestmark = pytest.mark.django_db


def _buyer_site(site: Any, n_pledges: int = 2, start_in: dt.timedelta | None = None) -> Any:
    pledges = [site.pledge(customer=site.customer_new()) for _ in range(n_pledges)]
    start = timezone.now() + start_in if start_in is not None else None
    opening = site.opening(site.units[:4], pledges, start_at=start)
    buyers = [buyer_ensure(actor=site.manager, pledge=p) for p in pledges]
    return opening, pledges, buyers


def test_signin_link_works_once_and_expires(site: Any) -> None:
    opening, pledges, buyers = _buyer_site(site)
    url = signin_link_send(
        actor=site.manager, pledge=pledges[0], opening=opening, base_url="http://testserver"
    )
    sms = OutboundMessage.objects.get()
    assert sms.channel == "sms" and url in sms.body
    path = url.removeprefix("http://testserver")

    c = Client()
    # a link preview (GET) shows a button and spends nothing, however often it comes
    for _ in range(2):
        shown = c.get(path)
        assert shown.status_code == 200 and 'data-testid="signin-confirm"' in shown.content.decode()
        assert "_auth_user_id" not in c.session
    assert BuyerSignIn.objects.get().used_at is None
    r = c.post(path)
    assert r.status_code == 302 and r["Location"].endswith(f"/inventory/openings/{opening.pk}/")
    assert c.get(r["Location"]).status_code == 200  # signed in as the buyer
    assert Client().post(path).status_code == 409  # single use
    assert Client().get(path).status_code == 409  # and the button is gone

    # expired: the row's deadline has passed
    url2 = signin_link_send(
        actor=site.manager, pledge=pledges[0], opening=opening, base_url="http://testserver"
    )
    BuyerSignIn.objects.filter(used_at__isnull=True).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert Client().post(url2.removeprefix("http://testserver")).status_code == 409
    # forged
    assert Client().get("/inventory/signin/nonsense/").status_code == 404
    assert Client().post("/inventory/signin/nonsense/").status_code == 404
    # the signature's own age limit
    from homeclub.common.errors import Conflict

    token = url2.rstrip("/").rsplit("/", 1)[1]
    with pytest.raises(Conflict):
        signin_link_use(token=token, now=timezone.now() + dt.timedelta(hours=2))
    assert buyers[0].role == "member"


def test_buyer_cannot_pick_with_anothers_pledge(
    site: Any, api_for: Any, make_user: Any, org: Any
) -> None:
    opening, pledges, buyers = _buyer_site(site)
    path = f"/api/v1/inventory/openings/{opening.pk}/picks"
    api = api_for(buyers[0])
    r = api.call("post", path, {"pledge_id": pledges[1].pk, "unit_id": site.units[0].pk})
    assert r.status_code == 404
    r = api.call("post", path, {"pledge_id": pledges[0].pk, "unit_id": site.units[0].pk})
    assert r.status_code == 201
    # staff within scope may pick on behalf; out of scope may not
    r = api_for(site.manager).call(
        "post", path, {"pledge_id": pledges[1].pk, "unit_id": site.units[1].pk}
    )
    assert r.status_code == 201
    outsider = make_user("sales_manager", org.gz1)
    p3 = site.pledge(customer=site.customer_new())
    r = api_for(outsider).call("post", path, {"pledge_id": p3.pk, "unit_id": site.units[2].pk})
    assert r.status_code == 404


def test_admission_limit_answers_503_with_retry_after(
    site: Any, api_for: Any, monkeypatch: Any
) -> None:
    opening, pledges, buyers = _buyer_site(site)
    monkeypatch.setattr(admission.PICKS, "limit", 0)
    r = api_for(buyers[0]).call(
        "post",
        f"/api/v1/inventory/openings/{opening.pk}/picks",
        {"pledge_id": pledges[0].pk, "unit_id": site.units[0].pk},
    )
    assert r.status_code == 503 and r["Retry-After"] == "1" and r.json()["code"] == "busy"
    assert Unit.objects.get(pk=site.units[0].pk).status == "available"


def test_request_queued_too_long_is_busy(site: Any, api_for: Any) -> None:
    opening, pledges, buyers = _buyer_site(site)
    stale = f"t={timezone.now().timestamp() - 60:.3f}"
    r = api_for(buyers[0]).call(
        "post",
        f"/api/v1/inventory/openings/{opening.pk}/picks",
        {"pledge_id": pledges[0].pk, "unit_id": site.units[0].pk},
        **{"X-Request-Start": stale},
    )
    assert r.status_code == 503 and r["Retry-After"] == "1"


def test_availability_unchanged_costs_no_query(
    site: Any, api_for: Any, django_assert_num_queries: Any
) -> None:
    opening, _pledges, buyers = _buyer_site(site)
    api = api_for(buyers[0])
    path = f"/api/v1/inventory/openings/{opening.pk}/availability"
    first = api.call("get", path)  # warms token, admission, meta and body
    assert first.status_code == 200
    with django_assert_num_queries(0):
        r = api.call("get", path)
        assert r.status_code == 200 and r.content == first.content
    with django_assert_num_queries(0):
        r = api.call("get", path, **{"If-None-Match": first["ETag"]})
        assert r.status_code == 304
    # another buyer's token that is not admitted: 404
    other = buyer_ensure(actor=site.manager, pledge=site.pledge(customer=site.customer_new()))
    assert api_for(other).call("get", path).status_code == 404


def test_favourites_and_heat_map(site: Any, make_user: Any) -> None:
    opening, pledges, buyers = _buyer_site(site, start_in=dt.timedelta(hours=1))
    u = site.units
    favourites_set(actor=buyers[0], opening=opening, pledge=pledges[0], unit_ids=[u[0].pk, u[1].pk])
    favourites_set(actor=buyers[1], opening=opening, pledge=pledges[1], unit_ids=[u[0].pk])
    assert favourite_heat(opening_id=opening.pk) == {u[0].pk: 2, u[1].pk: 1}
    from homeclub.common.errors import NotFound, ValidationFailed

    with pytest.raises(NotFound):  # not the buyer's pledge
        favourites_set(actor=buyers[0], opening=opening, pledge=pledges[1], unit_ids=[u[1].pk])
    with pytest.raises(ValidationFailed):  # not in this opening
        favourites_set(actor=buyers[0], opening=opening, pledge=pledges[0], unit_ids=[u[5].pk])

    # the phone page marks one more before the start
    c = Client()
    c.force_login(buyers[1])
    page = c.get(f"/inventory/openings/{opening.pk}/")
    assert page.status_code == 200 and 'data-testid="countdown"' in page.content.decode()
    c.post(f"/inventory/openings/{opening.pk}/units/{u[2].pk}/favourite/")
    assert favourite_heat(opening_id=opening.pk)[u[2].pk] == 1

    staff = Client()
    staff.force_login(site.manager)
    html = staff.get(f"/inventory/openings/{opening.pk}/staff/").content.decode()
    assert f'data-unit="{u[0].number}" data-count="2"' in html
    assert f"http://testserver/inventory/openings/{opening.pk}/signin/" in html
    assert Client().get(f"/inventory/openings/{opening.pk}/staff/").status_code == 302
    c2 = Client()
    c2.force_login(buyers[0])
    assert c2.get(f"/inventory/openings/{opening.pk}/staff/").status_code == 404


def test_similar_units_after_a_miss(site: Any) -> None:
    opening, pledges, buyers = _buyer_site(site)
    u = site.units
    opening_pick(actor=buyers[0], opening=opening, pledge=pledges[0], unit=u[0])
    similar = list(similar_units(unit=Unit.objects.get(pk=u[0].pk)))
    assert similar and all(s.status == "available" for s in similar)
    assert similar[0].layout == u[0].layout  # same layout first
    assert u[0].pk not in {s.pk for s in similar}

    c = Client()
    c.force_login(buyers[1])
    r = c.post(f"/inventory/openings/{opening.pk}/units/{u[0].pk}/pick/")
    assert r.status_code == 302 and f"missed={u[0].pk}" in r["Location"]
    frag = c.get(f"/inventory/openings/{opening.pk}/units/{u[0].pk}/similar/").content.decode()
    assert 'data-testid="similar"' in frag and similar[0].number in frag


def test_followup_list_after_close(site: Any) -> None:
    opening, pledges, buyers = _buyer_site(site, n_pledges=3)
    pick = opening_pick(actor=buyers[0], opening=opening, pledge=pledges[0], unit=site.units[0])
    assert pick.status == PickStatus.HELD
    opening_close(actor=site.manager, opening=opening)
    assert [p.pk for p in followup_list(opening=opening)] == [pledges[1].pk, pledges[2].pk]
    staff = Client()
    staff.force_login(site.manager)
    html = staff.get(f"/inventory/openings/{opening.pk}/staff/").content.decode()
    assert f'data-pledge="{pledges[1].number}"' in html
    assert f'data-pledge="{pledges[0].number}"' not in html


def test_phone_pick_and_confirm(site: Any) -> None:
    opening, pledges, buyers = _buyer_site(site)
    c = Client()
    c.force_login(buyers[0])
    c.post(f"/inventory/openings/{opening.pk}/units/{site.units[1].pk}/pick/")
    pick = OpeningPick.objects.get(pledge=pledges[0])
    page = c.get(f"/inventory/openings/{opening.pk}/").content.decode()
    assert 'data-testid="confirm"' in page
    c.post(f"/inventory/picks/{pick.pk}/confirm/")
    pick.refresh_from_db()
    assert pick.status == PickStatus.CONFIRMED
    assert 'data-testid="confirmed"' in c.get(f"/inventory/openings/{opening.pk}/").content.decode()
    # another buyer cannot confirm it
    c2 = Client()
    c2.force_login(buyers[1])
    assert c2.post(f"/inventory/picks/{pick.pk}/confirm/").status_code == 404


def test_pick_timeouts_and_refused_connections_are_busy(
    site: Any, api_for: Any, monkeypatch: Any
) -> None:
    from django.db import DatabaseError, OperationalError, transaction

    from homeclub.common.errors import Busy
    from homeclub.inventory.openings import pick_timeouts

    for text in ("canceling statement due to statement timeout", "deadlock detected"):
        with pytest.raises(Busy), transaction.atomic(), pick_timeouts():
            raise DatabaseError(text)
    opening, pledges, buyers = _buyer_site(site)

    def refused(*_a: Any, **_kw: Any) -> Any:
        raise OperationalError("FATAL: sorry, too many clients already")

    monkeypatch.setattr("homeclub.inventory.api.token_user", refused)
    r = api_for(buyers[0]).call(
        "post",
        f"/api/v1/inventory/openings/{opening.pk}/picks",
        {"pledge_id": pledges[0].pk, "unit_id": site.units[0].pk},
    )
    assert r.status_code == 503 and r["Retry-After"] == "1"
