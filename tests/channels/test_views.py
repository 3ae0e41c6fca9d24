"""The agent's phone pages and the manager's list (see tests/channels/urls.py)."""

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from homeclub.channels.models import Report
from homeclub.channels.services import AlreadyReported

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.channels.urls")]


def _client(user: Any) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_agent_reports_on_the_phone_page_and_sees_the_answer(world: Any) -> None:
    c = _client(world.a1.user)
    page = c.get(reverse("channels:report_new"))
    assert page.status_code == 200
    html = page.content.decode()
    assert f'value="{world.org.sz1.pk}"' in html
    assert f'value="{world.org.sz2.pk}"' not in html  # no contract there
    r = c.post(
        reverse("channels:report_new"),
        {
            "project": world.org.sz1.pk,
            "customer_name": "王先生",
            "phone": "13812345678",
            "expected_visit_at": f"{timezone.localdate() + dt.timedelta(days=1)}T10:00",
        },
    )
    assert r.status_code == 200
    html = r.content.decode()
    assert 'data-testid="report-accepted"' in html and "138****5678" in html
    report = Report.objects.get()
    # the form's local 10:00 is Asia/Shanghai: 02:00 UTC
    assert report.expected_visit_at is not None and report.expected_visit_at.hour == 2
    # the rival's attempt: refused, with the reason and without whose
    r = _client(world.b1.user).post(
        reverse("channels:report_new"),
        {"project": world.org.sz1.pk, "customer_name": "王", "phone": "138 1234 5678"},
    )
    html = r.content.decode()
    assert 'data-code="already_reported"' in html and "链家" not in html
    r = _client(world.b1.user).post(
        reverse("channels:report_new"),
        {"project": world.org.sz1.pk, "customer_name": "王", "phone": "138"},
    )
    assert 'data-field-error="phone"' in r.content.decode()
    assert Report.objects.filter(status="rejected").count() == 1


def test_agent_home_lists_own_reports_with_masked_phones(
    world: Any, django_assert_num_queries: Any
) -> None:
    for i in range(5):
        world.report(world.a1, f"1381234{i:04d}")
    world.report(world.a2, "13900001111")
    c = _client(world.a1.user)
    c.get(reverse("channels:home"))  # warm the session
    # session, user, agent profile, count, page
    with django_assert_num_queries(5):
        r = c.get(reverse("channels:home"))
    html = r.content.decode()
    assert html.count('data-report="') == 5
    assert "138****0004" in html and "13812340004" not in html
    assert "139****1111" not in html
    assert 'data-testid="protected-until"' in html
    for i in range(5, 12):
        world.report(world.a1, f"1381234{i:04d}")
    with django_assert_num_queries(5):  # no query per row
        r = c.get(reverse("channels:home"))
    assert r.content.decode().count('data-report="') == 12


def test_agent_cannot_open_anyone_elses_report(world: Any) -> None:
    mine = world.report(world.a1, "13812345678")
    colleague = world.report(world.a2, "13900001111")
    rival = world.report(world.b1, "13700002222")
    c = _client(world.a1.user)
    assert c.get(reverse("channels:report_detail", args=[mine.pk])).status_code == 200
    for other in (colleague.pk, rival.pk, rival.pk + 1000):
        assert c.get(reverse("channels:report_detail", args=[other])).status_code == 404
    assert c.get(reverse("channels:manage")).status_code == 404
    assert c.get(reverse("console:customer_list")).status_code == 404


def test_manager_lists_reports_by_project_status_and_agency(world: Any, make_user: Any) -> None:
    a = world.report(world.a1, "13812345678")
    b = world.report(world.b1, "13900001111")
    with pytest.raises(AlreadyReported):
        world.report(world.b1, "13812345678")
    c = _client(world.manager)
    assert c.get(reverse("channels:home")).status_code == 302  # staff land on the list
    html = c.get(reverse("channels:manage")).content.decode()
    assert f'data-report="{a.pk}"' in html and f'data-report="{b.pk}"' in html
    html = c.get(reverse("channels:manage"), {"agency": world.woai.pk}).content.decode()
    assert f'data-report="{a.pk}"' not in html and f'data-report="{b.pk}"' in html
    html = c.get(reverse("channels:manage"), {"status": "rejected"}).content.decode()
    assert html.count('data-report="') == 1 and html.count('data-status="rejected"') == 1
    html = c.get(reverse("channels:manage"), {"project": world.org.sz2.pk}).content.decode()
    assert 'data-report="' not in html
    assert c.get(reverse("channels:report_detail", args=[a.pk])).status_code == 200
    gz = _client(make_user("channel_manager", world.org.gz))
    assert 'data-report="' not in gz.get(reverse("channels:manage")).content.decode()
    assert gz.get(reverse("channels:report_detail", args=[a.pk])).status_code == 404
