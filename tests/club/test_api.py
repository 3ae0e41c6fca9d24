from typing import Any

from homeclub.club.services import member_join
from tests.api.conftest import Api, api_for  # noqa: F401
from tests.points.helpers import make_customer


def test_join_lookup_and_member_sees_only_self(
    org: Any,
    units: Any,
    make_user: Any,
    api_for: Any,  # noqa: F811
) -> None:
    operator = make_user("club_operator", org.sz)
    api: Api = api_for(operator)
    customer = make_customer(org.sz1)
    r = api.call(
        "POST",
        "/api/v1/club/members",
        {"customer_id": customer.pk, "business_unit_id": units["commercial"].pk},
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["number"].startswith("HC") and body["mobile"] != customer.mobile
    again = api.call(
        "POST",
        "/api/v1/club/members",
        {"customer_id": customer.pk, "business_unit_id": units["commercial"].pk},
    )
    assert again.status_code == 409 and again.json()["code"] == "already_member"

    by_phone = api.call("GET", f"/api/v1/club/members/lookup?phone={customer.mobile[3:]}")
    assert by_phone.status_code == 200 and by_phone.json()["id"] == body["id"]
    outsider = api_for(make_user("club_operator", org.gz))
    assert outsider.call("GET", f"/api/v1/club/members/{body['id']}").status_code == 404

    me = make_user("member")
    other = member_join(
        actor=None, customer=make_customer(org.sz1), business_unit=units["hotel"], user=me
    )
    mine = api_for(me)
    assert mine.call("GET", f"/api/v1/club/members/{other.pk}").status_code == 200
    assert mine.call("GET", f"/api/v1/club/members/{body['id']}").status_code == 404
    freeze = mine.call("POST", f"/api/v1/club/members/{other.pk}/freeze", {})
    assert freeze.status_code == 403
    assert api.call("POST", f"/api/v1/club/members/{body['id']}/freeze", {}).json()["status"] == (
        "frozen"
    )
