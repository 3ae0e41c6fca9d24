"""Consent and quiet hours, checked when a message is queued and again when it is sent."""

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from homeclub.messaging import backends
from homeclub.messaging.gates import (
    LOCAL_TZ,
    has_consent,
    message_gate,
    quiet_hours_end,
    register_consent_provider,
    unregister_consent_provider,
)
from homeclub.messaging.models import OutboundMessage
from homeclub.messaging.tasks import deliver_due_messages

from .conftest import Consent
from .support import future_day, local

Status = OutboundMessage.Status


@pytest.fixture
def no_quiet_hours(settings: Any) -> None:
    settings.HOMECLUB_QUIET_HOURS = (0, 0)


# --- quiet hours, pure ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("hour", "minute", "release"),
    [
        (21, 0, (1, 8)),  # quiet starts at 21:00 sharp
        (22, 30, (1, 8)),  # evening → 08:00 next day
        (3, 0, (0, 8)),  # small hours → 08:00 the same day
        (7, 59, (0, 8)),
        (8, 0, None),  # quiet ends at 08:00
        (20, 59, None),
        (12, 0, None),
    ],
)
def test_default_quiet_hours_span_midnight(
    settings: Any, hour: int, minute: int, release: tuple[int, int] | None
) -> None:
    settings.HOMECLUB_QUIET_HOURS = (21, 8)
    day = dt.date(2026, 11, 23)
    got = quiet_hours_end(local(day, hour, minute))
    if release is None:
        assert got is None
    else:
        assert got == local(day + dt.timedelta(days=release[0]), release[1])


def test_quiet_hours_take_utc_input_and_other_windows(settings: Any) -> None:
    settings.HOMECLUB_QUIET_HOURS = (21, 8)
    # 14:30 UTC is 22:30 in Shanghai.
    utc = dt.datetime(2026, 11, 23, 14, 30, tzinfo=dt.UTC)
    assert quiet_hours_end(utc) == dt.datetime(2026, 11, 24, 8, 0, tzinfo=LOCAL_TZ)
    settings.HOMECLUB_QUIET_HOURS = (1, 6)  # a window inside one day
    day = dt.date(2026, 11, 23)
    assert quiet_hours_end(local(day, 2)) == local(day, 6)
    assert quiet_hours_end(local(day, 23)) is None
    settings.HOMECLUB_QUIET_HOURS = (0, 0)  # none at all
    assert quiet_hours_end(local(day, 3)) is None


# --- consent, pure --------------------------------------------------------------------


def test_consent_needs_a_yes_and_no_no(customer: Any) -> None:
    assert has_consent(customer, "sms") is False  # nobody registered: no consent
    yes = register_consent_provider(lambda c, ch: True)
    unsure = register_consent_provider(lambda c, ch: None)
    try:
        assert has_consent(customer, "sms") is True
        assert has_consent(None, "sms") is False
        no = register_consent_provider(lambda c, ch: False if ch == "email" else None)
        assert has_consent(customer, "sms") is True
        assert has_consent(customer, "email") is False  # one "no" beats any "yes"
        unregister_consent_provider(no)
    finally:
        unregister_consent_provider(yes)
        unregister_consent_provider(unsure)


def test_a_broken_consent_provider_fails_closed(customer: Any) -> None:
    def broken(c: Any, ch: str) -> bool | None:
        raise RuntimeError("consent table missing")

    register_consent_provider(broken)
    try:
        assert has_consent(customer, "sms") is False
    finally:
        unregister_consent_provider(broken)


def test_gate_decisions(customer: Any, consent: Consent, settings: Any) -> None:
    settings.HOMECLUB_QUIET_HOURS = (21, 8)
    night = local(dt.date(2026, 11, 23), 23)
    noon = local(dt.date(2026, 11, 23), 12)
    transactional = message_gate(channel="sms", purpose="transactional", customer=None, now=night)
    assert transactional.status == Status.QUEUED and transactional.not_before is None
    blocked = message_gate(channel="sms", purpose="marketing", customer=customer, now=noon)
    assert blocked.blocked and blocked.block_reason == "no_consent"
    consent.answer = True
    assert message_gate(channel="sms", purpose="marketing", customer=customer, now=noon) == (
        message_gate(channel="sms", purpose="transactional", customer=customer, now=noon)
    )
    deferred = message_gate(channel="sms", purpose="marketing", customer=customer, now=night)
    assert deferred.not_before == local(dt.date(2026, 11, 24), 8)
    assert consent.asked[-1] == (customer.pk, "sms")


# --- through message_send --------------------------------------------------------------


def test_marketing_without_any_consent_provider_is_blocked(
    customer: Any, send: Callable[..., OutboundMessage], no_quiet_hours: None
) -> None:
    message = send(purpose="marketing", customer=customer)
    assert message.status == Status.BLOCKED
    assert message.block_reason == "no_consent"
    assert message.next_attempt_at is None
    assert deliver_due_messages()["due"] == 0
    message.refresh_from_db()
    assert message.status == Status.BLOCKED
    assert backends.outbox == []


def test_marketing_with_consent_is_sent(
    customer: Any, consent: Consent, send: Callable[..., OutboundMessage], no_quiet_hours: None
) -> None:
    consent.answer = True
    message = send(purpose="marketing", customer=customer)
    assert message.status == Status.SENT
    assert [m["message_id"] for m in backends.outbox] == [message.pk]
    # Asked when queued and again when delivered.
    assert consent.asked == [(customer.pk, "sms"), (customer.pk, "sms")]


@pytest.mark.parametrize("answer", [False, None])
def test_marketing_refused_or_unknown_is_blocked(
    customer: Any,
    consent: Consent,
    send: Callable[..., OutboundMessage],
    no_quiet_hours: None,
    answer: bool | None,
) -> None:
    consent.answer = answer
    assert send(purpose="marketing", customer=customer).status == Status.BLOCKED
    assert backends.outbox == []


def test_marketing_to_an_address_without_a_customer_is_blocked(
    consent: Consent, send: Callable[..., OutboundMessage], no_quiet_hours: None
) -> None:
    consent.answer = True
    assert send(purpose="marketing").status == Status.BLOCKED
    assert consent.asked == []


def test_transactional_skips_the_consent_gate(
    customer: Any, consent: Consent, send: Callable[..., OutboundMessage]
) -> None:
    consent.answer = False
    message = send(purpose="transactional", customer=customer)
    assert message.status == Status.SENT
    assert consent.asked == []


def test_marketing_in_quiet_hours_waits_until_eight(
    customer: Any, consent: Consent, send: Callable[..., OutboundMessage], settings: Any
) -> None:
    settings.HOMECLUB_QUIET_HOURS = (21, 8)
    consent.answer = True
    day = future_day()
    evening = local(day, 22, 30)
    eight = local(day + dt.timedelta(days=1), 8)
    marketing = send(purpose="marketing", customer=customer, now=evening)
    transactional = send(customer=customer, now=evening)

    # A login code does not wait for the morning; the marketing message does.
    assert transactional.next_attempt_at == evening
    assert marketing.status == Status.QUEUED
    assert marketing.next_attempt_at == eight
    assert marketing.attempts == 0

    assert deliver_due_messages(now=evening)["sent"] == 1
    transactional.refresh_from_db()
    assert transactional.status == Status.SENT
    assert [m["message_id"] for m in backends.outbox] == [transactional.pk]

    assert deliver_due_messages(now=eight - dt.timedelta(minutes=1))["due"] == 0
    assert deliver_due_messages(now=eight) == {
        "requeued": 0,
        "failed_stuck": 0,
        "due": 1,
        "sent": 1,
    }
    marketing.refresh_from_db()
    assert marketing.status == Status.SENT
    assert [m["message_id"] for m in backends.outbox] == [transactional.pk, marketing.pk]


def test_consent_withdrawn_before_a_deferred_message_goes_blocks_it(
    customer: Any, consent: Consent, send: Callable[..., OutboundMessage], settings: Any
) -> None:
    settings.HOMECLUB_QUIET_HOURS = (21, 8)
    consent.answer = True
    day = future_day()
    message = send(purpose="marketing", customer=customer, now=local(day, 23))
    assert message.status == Status.QUEUED
    consent.answer = False  # withdrawn overnight
    result = deliver_due_messages(now=local(day + dt.timedelta(days=1), 8, 5))
    assert result["blocked"] == 1
    message.refresh_from_db()
    assert message.status == Status.BLOCKED
    assert message.block_reason == "no_consent"
    assert message.attempts == 0
    assert backends.outbox == []
