from collections.abc import Callable, Iterator
from typing import Any

import pytest

from homeclub.customers.models import Customer, CustomerProject
from homeclub.messaging import backends
from homeclub.messaging.gates import register_consent_provider, unregister_consent_provider
from homeclub.messaging.models import OutboundMessage
from homeclub.messaging.services import message_send

from .support import PATH, ScriptedBackend


@pytest.fixture(autouse=True)
def _clean_outbox() -> Iterator[None]:
    backends.reset_outbox()
    ScriptedBackend.reset()
    yield
    backends.reset_outbox()


@pytest.fixture
def customer(org: Any) -> Customer:
    customer = Customer.objects.create(name="张三", mobile="+8613800138000", project=org.sz1)
    CustomerProject.objects.create(
        customer=customer, project=org.sz1, first_seen_at=customer.created_at
    )
    return customer


class Consent:
    """A consent provider a test can set: True, False or None for every question."""

    def __init__(self) -> None:
        self.answer: bool | None = None
        self.asked: list[tuple[int, str]] = []

    def __call__(self, customer: Any, channel: str) -> bool | None:
        self.asked.append((customer.pk, channel))
        return self.answer


@pytest.fixture
def consent() -> Iterator[Consent]:
    provider = Consent()
    register_consent_provider(provider)
    yield provider
    unregister_consent_provider(provider)


@pytest.fixture
def scripted(settings: Any) -> type[ScriptedBackend]:
    settings.HOMECLUB_SMS_BACKEND = PATH
    settings.HOMECLUB_WECHAT_BACKEND = PATH
    return ScriptedBackend


@pytest.fixture
def send(db: Any, django_capture_on_commit_callbacks: Any) -> Callable[..., OutboundMessage]:
    """message_send with its after-commit delivery run (the test transaction never commits)."""

    def run(**kwargs: Any) -> OutboundMessage:
        kwargs.setdefault("channel", "sms")
        kwargs.setdefault("to", "13800138000")
        kwargs.setdefault("template", "login_code")
        kwargs.setdefault("context", {"code": "123456"})
        with django_capture_on_commit_callbacks(execute=True):
            message = message_send(**kwargs)
        message.refresh_from_db()
        return message

    return run
