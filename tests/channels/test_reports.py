"""Reports (报备): one scenario per rule, on the services."""

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from homeclub.channels.models import Report
from homeclub.channels.services import (
    AgencyInactive,
    AlreadyReported,
    DeveloperProtected,
    MaskedNotAllowed,
    agency_contract_create,
    agency_create,
    agent_create,
    report_create,
)
from homeclub.common.errors import Forbidden, NotFound, ValidationFailed
from homeclub.common.models import AuditEvent

pytestmark = pytest.mark.django_db

PHONE = "13812345678"


def _stored(err: Any) -> Report:
    """The rejected row a refusal was recorded as."""
    assert err.report_id is not None
    return Report.objects.get(pk=err.report_id)


def test_accepted_report_protects_for_the_report_window(world: Any) -> None:
    world.rules(report_window_hours=48)
    before = timezone.now()
    r = world.report(world.a1, "138 1234 5678", note="周末来")
    assert r.status == "reported" and r.protecting and r.reason == ""
    assert r.phone_e164 == "+8613812345678" and r.phone_key == "1385678" and not r.is_masked
    assert r.phone_masked == "138****5678"
    assert r.protected_until == r.reported_at + dt.timedelta(hours=48)
    assert before <= r.reported_at <= timezone.now()
    assert r.rule_version == 2 and r.rule_set.report_window_hours == 48
    assert r.agency_id == world.lianjia.pk and r.agent_id == world.a1.user_id
    audit = AuditEvent.objects.get(action="channels.report.create", object_id=str(r.pk))
    assert audit.changes["phone"] == "138****5678" and audit.changes["status"] == "reported"
    assert "12345678" not in str(audit.changes)


def test_second_report_within_protection_is_rejected_and_the_first_agent_keeps_it(
    world: Any,
) -> None:
    first = world.report(world.a1, PHONE)
    with pytest.raises(AlreadyReported) as caught:
        world.report(world.b1, PHONE, customer_name="王总")
    err = caught.value
    assert err.code == "already_reported" and err.status == 409
    # never whose: neither the agency nor the agent is named
    text = str(err.message)
    assert "链家" not in text and world.a1.user.name not in text
    rejected = _stored(err)
    assert rejected.status == "rejected" and rejected.reason == "already_reported"
    assert not rejected.protecting and rejected.agent_id == world.b1.user_id
    # a colleague of the same agency, and the same agent again, are refused just the same
    with pytest.raises(AlreadyReported) as colleague:
        world.report(world.a2, PHONE)
    assert str(colleague.value.message) == text
    with pytest.raises(AlreadyReported) as caught:
        world.report(world.a1, PHONE)
    # the holder is told it is theirs, and until when
    until = timezone.localtime(first.protected_until).strftime("%Y-%m-%d %H:%M")
    assert until in str(caught.value.message) and caught.value.code == "already_reported"
    assert Report.objects.get(pk=first.pk).protecting
    # the customer comes (with the other agency's agent, even): the first report wins
    visit = world.visit(PHONE, agent=world.b1)
    first.refresh_from_db()
    assert first.status == "visited" and first.visit_id == visit.pk
    assert first.customer_id == visit.customer_id
    assert Report.objects.filter(protecting=True).count() == 1


def test_report_after_expiry_by_another_agency_wins(world: Any, aged: Any) -> None:
    first = aged(world.report(world.a1, PHONE), hours=73)  # the 72 h window has passed
    second = world.report(world.b1, PHONE)
    assert second.status == "reported" and second.protecting
    first.refresh_from_db()
    assert first.status == "expired" and not first.protecting
    assert first.reason == "report_window_expired"
    visit = world.visit(PHONE, agent=world.b1)
    second.refresh_from_db()
    assert second.status == "visited" and second.visit_id == visit.pk
    first.refresh_from_db()
    assert first.status == "expired" and first.customer_id is None


def test_report_of_a_customer_who_visited_naturally_is_rejected(world: Any) -> None:
    world.visit(PHONE, visited_at=timezone.now() - dt.timedelta(days=10))
    with pytest.raises(DeveloperProtected) as caught:
        world.report(world.a1, PHONE)
    assert caught.value.code == "developer_protected"
    assert _stored(caught.value).reason == "developer_protected"
    # another project does not know this customer: accepted there
    agency_contract_create(
        actor=world.manager,
        agency=world.lianjia,
        project=world.org.sz2,
        starts_on=timezone.localdate(),
    )
    assert world.report(world.a1, PHONE, project=world.org.sz2).status == "reported"


def test_natural_visit_older_than_the_developer_window_does_not_protect(world: Any) -> None:
    world.rules(developer_protection_days=30)
    world.visit(PHONE, visited_at=timezone.now() - dt.timedelta(days=31))
    assert world.report(world.a1, PHONE).status == "reported"


def test_visit_brought_by_an_agent_is_not_a_natural_visit(world: Any, aged: Any) -> None:
    first = world.report(world.a1, PHONE)
    world.visit(PHONE, agent=world.a1)
    # the visit's protection is over: the customer is free again, not the developer's
    from homeclub.channels.services import reports_expire

    Report.objects.filter(pk=first.pk).update(protected_until=timezone.now())
    reports_expire()
    assert world.report(world.b1, PHONE).status == "reported"


def test_masked_report_is_rejected_where_the_project_does_not_allow_it(world: Any) -> None:
    with pytest.raises(MaskedNotAllowed) as caught:
        world.report(world.a1, "138****5678")
    err = caught.value
    assert err.code == "masked_not_allowed" and err.status == 422 and "phone" in err.fields
    row = _stored(err)
    assert row.status == "rejected" and row.is_masked and row.phone_e164 == ""


def test_masked_report_is_accepted_where_allowed_and_conflicts_with_full_numbers(
    world: Any,
) -> None:
    world.rules(allow_masked_reports=True)
    masked = world.report(world.a1, "138＊＊＊＊5678")  # full-width asterisks fold
    assert masked.status == "reported" and masked.is_masked and masked.key_guard
    assert masked.phone_e164 == "" and masked.phone_masked == "138****5678"
    # a full number under the same mask is the same customer as far as anyone can tell
    with pytest.raises(AlreadyReported):
        world.report(world.b1, "13899995678")
    with pytest.raises(AlreadyReported):
        world.report(world.b1, "138****5678")
    # and the other way round, on another key
    world.report(world.b1, "13900001111")
    with pytest.raises(AlreadyReported):
        world.report(world.a1, "139****1111")


def test_full_numbers_sharing_a_mask_are_two_people_where_masks_are_not_allowed(
    world: Any,
) -> None:
    a = world.report(world.a1, "13812345678")
    b = world.report(world.b1, "13899995678")
    assert a.protecting and b.protecting and a.phone_key == b.phone_key


def test_masked_report_sees_full_reports_made_before_masks_were_allowed(world: Any) -> None:
    world.report(world.a1, "13812345678")  # no key guard: masks not allowed yet
    world.rules(allow_masked_reports=True)
    with pytest.raises(AlreadyReported):
        world.report(world.b1, "138****5678")
    with pytest.raises(AlreadyReported):
        world.report(world.b1, "13899995678")


def test_full_report_sees_masked_reports_after_masks_were_disallowed(world: Any) -> None:
    world.rules(allow_masked_reports=True)
    world.report(world.a1, "138****5678")
    world.rules(allow_masked_reports=False)
    with pytest.raises(AlreadyReported):
        world.report(world.b1, "13812345678")


def test_inactive_agency_is_rejected(world: Any) -> None:
    # no contract with 公园里 (sz2)
    with pytest.raises(AgencyInactive) as caught:
        world.report(world.a1, PHONE, project=world.org.sz2)
    assert caught.value.code == "agency_inactive" and caught.value.status == 403
    assert _stored(caught.value).reason == "agency_inactive"
    # a contract that ended yesterday, or one that starts tomorrow, covers nothing today
    today = timezone.localdate()
    agency_contract_create(
        actor=world.manager,
        agency=world.lianjia,
        project=world.org.sz2,
        starts_on=today - dt.timedelta(days=60),
        ends_on=today - dt.timedelta(days=1),
    )
    agency_contract_create(
        actor=world.manager,
        agency=world.lianjia,
        project=world.org.sz2,
        starts_on=today + dt.timedelta(days=1),
    )
    with pytest.raises(AgencyInactive):
        world.report(world.a1, PHONE, project=world.org.sz2)
    # an agency switched off is inactive everywhere
    type(world.woai).objects.filter(pk=world.woai.pk).update(active=False)
    with pytest.raises(AgencyInactive):
        world.report(world.b1, PHONE)
    # a crowd agent needs no contract
    assert world.report(world.crowd, PHONE, project=world.org.sz2).status == "reported"


def test_invalid_phone_is_a_field_error_and_is_not_stored(world: Any) -> None:
    for bad in ("1381234567", "12345678901", "010-12345678", "138***5678", "", "abc"):
        with pytest.raises(ValidationFailed) as caught:
            world.report(world.a1, bad)
        assert caught.value.code == "phone_invalid" and "phone" in caught.value.fields, bad
    with pytest.raises(ValidationFailed) as caught:
        world.report(world.a1, "138", customer_name="")
    assert set(caught.value.fields) == {"phone", "customer_name"}
    assert not Report.objects.exists()


def test_only_agents_report_and_only_to_real_projects(world: Any, make_user: Any) -> None:
    with pytest.raises(Forbidden) as caught:
        report_create(actor=world.manager, project=world.org.sz1, customer_name="x", phone=PHONE)
    assert caught.value.code == "not_an_agent"
    bare = make_user("channel_agent")  # an agent user without a profile
    with pytest.raises(Forbidden):
        report_create(actor=bare, project=world.org.sz1, customer_name="x", phone=PHONE)
    with pytest.raises(NotFound):
        world.report(world.a1, PHONE, project=world.org.sz)  # a city, not a project
    with pytest.raises(ValidationFailed):
        world.report(world.a1, PHONE, expected_visit_at=dt.datetime(2026, 12, 1, 10, 0))


def test_agents_and_agencies_are_made_by_channel_managers(world: Any, make_user: Any) -> None:
    consultant = make_user("sales_consultant", world.org.sz1)
    with pytest.raises(Forbidden):
        agency_create(actor=consultant, name="中原")
    with pytest.raises(ValidationFailed) as caught:
        agency_create(actor=world.manager, name="链家")
    assert "name" in caught.value.fields
    with pytest.raises(ValidationFailed) as caught:
        agent_create(
            actor=world.manager,
            username="dup",
            name="重复",
            mobile=world.a1.mobile,
            agency=world.lianjia,
        )
    assert "mobile" in caught.value.fields
    crowd = world.crowd
    assert crowd.is_crowd and crowd.agency_id is None and crowd.user.role == "channel_agent"
    assert crowd.user.org_nodes.count() == 0
    # a manager of Guangzhou cannot contract an agency into a Shenzhen project
    gz = make_user("channel_manager", world.org.gz)
    with pytest.raises(NotFound):
        agency_contract_create(
            actor=gz, agency=world.lianjia, project=world.org.sz2, starts_on=timezone.localdate()
        )
    with pytest.raises(ValidationFailed):
        agency_contract_create(
            actor=world.manager,
            agency=world.lianjia,
            project=world.org.sz2,
            starts_on=timezone.localdate(),
            ends_on=timezone.localdate() - dt.timedelta(days=1),
        )


def test_agency_and_agent_visibility(world: Any, make_user: Any) -> None:
    from homeclub.channels.models import Agency, Agent
    from homeclub.org.scoping import scoped

    gz = make_user("channel_manager", world.org.gz)
    assert set(scoped(Agency.objects.all(), world.manager)) == {world.lianjia, world.woai}
    assert not scoped(Agency.objects.all(), gz).exists()
    assert world.a1 in scoped(Agent.objects.all(), world.manager)
    assert not scoped(Agent.objects.all(), gz).exists()
    assert list(scoped(Agent.objects.all(), world.a1.user)) == [world.a1]
    # a Guangzhou manager cannot put agents into an agency they have no contract with
    with pytest.raises(NotFound):
        agent_create(
            actor=gz, username="gz1", name="广州", mobile="13611112222", agency=world.lianjia
        )
