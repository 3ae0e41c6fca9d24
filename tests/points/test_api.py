from typing import Any

from homeclub.points.models import Entry
from tests.api.conftest import Api, api_for  # noqa: F401

from .helpers import make_member


def test_award_redeem_balance_history_over_http(
    org: Any,
    units: Any,
    make_user: Any,
    api_for: Any,  # noqa: F811
) -> None:
    member = make_member(org.sz1, units["commercial"])
    pos: Api = api_for(make_user("club_operator", org.group))
    body = {
        "member_number": member.number,
        "business_unit_id": units["commercial"].pk,
        "amount_bu_units": 120,
        "source_type": "pos_receipt",
        "source_id": "R-1",
    }
    first = pos.call("POST", "/api/v1/points/awards", body, **{"Idempotency-Key": "k1"})
    assert first.status_code == 200, first.content
    assert first.json()["amount"] == 120 and first.json()["rate_id"] is not None
    # The same receipt under another key still awards once.
    other = pos.call("POST", "/api/v1/points/awards", body, **{"Idempotency-Key": "k2"})
    assert other.json()["id"] == first.json()["id"]
    assert Entry.objects.filter(source_type="pos_receipt").count() == 1

    too_much = pos.call(
        "POST",
        "/api/v1/points/redemptions",
        {"member_id": member.pk, "points": 121, "source_type": "order", "source_id": "1"},
    )
    assert too_much.status_code == 409 and too_much.json()["code"] == "insufficient_points"
    ok = pos.call(
        "POST",
        "/api/v1/points/redemptions",
        {"member_id": member.pk, "points": 20, "source_type": "order", "source_id": "2"},
    )
    assert ok.status_code == 200 and ok.json()["balance_after"] == 100
    cancel = pos.call(
        "POST", "/api/v1/points/redemptions/cancel", {"source_type": "order", "source_id": "2"}
    )
    assert cancel.json()["balance_after"] == 120

    account = pos.call("GET", f"/api/v1/points/members/{member.pk}/account").json()
    assert (account["balance"], account["debt"], account["yuan_value"]) == (120, 0, "12.00")
    assert [lot["remaining"] for lot in account["lots"]] == [120]
    history = pos.call("GET", f"/api/v1/points/members/{member.pk}/entries?limit=2").json()
    assert history["count"] == 3 and len(history["results"]) == 2
    assert history["results"][0]["kind"] == "redeem_cancel"

    bad = pos.call("POST", "/api/v1/points/awards", {**body, "points": 5, "source_id": "R-2"})
    assert bad.status_code == 422  # units and points together


def test_scoping_members_read_only_themselves(
    org: Any,
    units: Any,
    make_user: Any,
    api_for: Any,  # noqa: F811
) -> None:
    me = make_user("member")
    mine = make_member(org.sz1, units["commercial"], user=me)
    theirs = make_member(org.gz1, units["commercial"])
    member_api: Api = api_for(me)
    assert member_api.call("GET", f"/api/v1/points/members/{mine.pk}/account").status_code == 200
    assert member_api.call("GET", f"/api/v1/points/members/{theirs.pk}/account").status_code == 404
    award = member_api.call(
        "POST",
        "/api/v1/points/awards",
        {
            "member_id": mine.pk,
            "business_unit_id": units["commercial"].pk,
            "points": 5,
            "source_type": "self",
            "source_id": "1",
        },
    )
    assert award.status_code == 403
    sz_staff = api_for(make_user("club_operator", org.sz))
    outside = sz_staff.call(
        "POST",
        "/api/v1/points/awards",
        {
            "member_id": theirs.pk,
            "business_unit_id": units["commercial"].pk,
            "points": 5,
            "source_type": "pos",
            "source_id": "x",
        },
    )
    assert outside.status_code == 404
