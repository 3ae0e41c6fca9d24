"""The HTTP SMS / WeChat adapter against a real local HTTP server."""

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from homeclub.messaging.models import OutboundMessage

Status = OutboundMessage.Status


@dataclass
class FakeGateway:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        self.server.recorded.append(
            {"path": self.path, "headers": dict(self.headers), "json": body}
        )
        n = len(self.server.recorded)
        if self.path == "/slow":
            time.sleep(1.0)
            self._answer(200, {"id": "too-late"})
        elif self.path == "/reject":
            self._answer(400, {"error": "invalid mobile"})
        elif self.path == "/error":
            self._answer(500, {"error": "gateway down"})
        elif self.path == "/busy":
            self._answer(429, {"error": "slow down"})
        elif self.path == "/noid":
            self._answer(200, {"status": "accepted"})
        else:
            self._answer(200, {"id": f"gw-{n}"})

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def _server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.recorded = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def gateway(_server: ThreadingHTTPServer, settings: Any) -> FakeGateway:
    _server.recorded.clear()  # type: ignore[attr-defined]
    host, port = _server.server_address[:2]
    base = f"http://{host!s}:{port}"
    settings.HOMECLUB_SMS_BACKEND = "http"
    settings.HOMECLUB_SMS_URL = f"{base}/sms"
    settings.HOMECLUB_SMS_API_KEY = "sms-secret"
    settings.HOMECLUB_SMS_TIMEOUT = 0.3
    settings.HOMECLUB_WECHAT_BACKEND = "http"
    settings.HOMECLUB_WECHAT_URL = f"{base}/wechat"
    settings.HOMECLUB_WECHAT_API_KEY = "wx-secret"
    settings.HOMECLUB_WECHAT_TIMEOUT = 0.3
    return FakeGateway(url=base, requests=_server.recorded)  # type: ignore[attr-defined]


def test_200_with_an_id_is_sent(gateway: FakeGateway, send: Callable[..., OutboundMessage]) -> None:
    message = send(context={"code": "135790"})
    assert message.status == Status.SENT
    assert message.provider_message_id == "gw-1"
    [request] = gateway.requests
    assert request["path"] == "/sms"
    assert request["headers"]["Authorization"] == "Bearer sms-secret"
    assert request["headers"]["Idempotency-Key"] == f"homeclub-message-{message.pk}"
    assert request["json"] == {
        "to": "+8613800138000",
        "text": "【homeclub】您的验证码是 135790，5 分钟内有效。",
        "ref": f"homeclub-{message.pk}",
    }


def test_400_is_permanent(
    gateway: FakeGateway, send: Callable[..., OutboundMessage], settings: Any
) -> None:
    settings.HOMECLUB_SMS_URL = f"{gateway.url}/reject"
    message = send()
    assert message.status == Status.FAILED
    assert message.attempts == 1
    assert message.last_error.startswith("HTTP 400")
    assert "invalid mobile" in message.last_error


@pytest.mark.parametrize(("path", "error"), [("/error", "HTTP 500"), ("/busy", "HTTP 429")])
def test_500_and_429_are_transient(
    gateway: FakeGateway,
    send: Callable[..., OutboundMessage],
    settings: Any,
    path: str,
    error: str,
) -> None:
    settings.HOMECLUB_SMS_URL = f"{gateway.url}{path}"
    message = send()
    assert message.status == Status.QUEUED
    assert message.attempts == 1
    assert message.last_error.startswith(error)
    assert message.next_attempt_at is not None


def test_timeout_is_transient(
    gateway: FakeGateway, send: Callable[..., OutboundMessage], settings: Any
) -> None:
    settings.HOMECLUB_SMS_URL = f"{gateway.url}/slow"
    started = time.monotonic()
    message = send()
    assert time.monotonic() - started < 0.9  # gave up at the 0.3 s timeout
    assert message.status == Status.QUEUED
    assert message.last_error.startswith("timeout after 0.3s")


def test_connection_refused_is_transient(
    gateway: FakeGateway, send: Callable[..., OutboundMessage], settings: Any
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.HOMECLUB_SMS_URL = f"http://127.0.0.1:{port}/sms"  # nobody listens there
    message = send()
    assert message.status == Status.QUEUED
    assert message.last_error.startswith("connection")


def test_missing_url_keeps_the_message_queued(
    gateway: FakeGateway, send: Callable[..., OutboundMessage], settings: Any
) -> None:
    settings.HOMECLUB_SMS_URL = ""
    message = send()
    assert message.status == Status.QUEUED
    assert "HOMECLUB_SMS_URL" in message.last_error
    assert gateway.requests == []


def test_2xx_without_an_id_counts_as_sent(
    gateway: FakeGateway, send: Callable[..., OutboundMessage], settings: Any
) -> None:
    settings.HOMECLUB_SMS_URL = f"{gateway.url}/noid"
    message = send()
    assert message.status == Status.SENT  # retrying an accepted message could send it twice
    assert message.provider_message_id == ""


def test_wechat_posts_template_id_and_data(
    gateway: FakeGateway, send: Callable[..., OutboundMessage], monkeypatch: Any
) -> None:
    from homeclub.messaging import defaults

    monkeypatch.setattr(defaults, "_DEFAULTS", dict(defaults._DEFAULTS))
    defaults.register_default_template(
        "event_reminder",
        "wechat",
        "zh-hans",
        body="{{ event }} 将于 {{ time }} 开始",
        wechat_template_id="wx-tpl-9",
    )
    message = send(
        channel="wechat",
        to="oAbC_123-xyz",
        template="event_reminder",
        context={"event": "茶艺沙龙", "time": "周六 14:00"},
    )
    assert message.status == Status.SENT
    [request] = gateway.requests
    assert request["path"] == "/wechat"
    assert request["headers"]["Authorization"] == "Bearer wx-secret"
    assert request["json"] == {
        "to": "oAbC_123-xyz",
        "text": "茶艺沙龙 将于 周六 14:00 开始",
        "ref": f"homeclub-{message.pk}",
        "template_id": "wx-tpl-9",
        "data": {"event": {"value": "茶艺沙龙"}, "time": {"value": "周六 14:00"}},
    }


def test_retry_after_a_server_error_reaches_the_gateway_again(
    gateway: FakeGateway, send: Callable[..., OutboundMessage], settings: Any
) -> None:
    from homeclub.messaging.tasks import deliver_due_messages

    settings.HOMECLUB_SMS_URL = f"{gateway.url}/error"
    message = send()
    assert message.status == Status.QUEUED
    settings.HOMECLUB_SMS_URL = f"{gateway.url}/sms"  # the gateway recovered
    assert message.next_attempt_at is not None
    assert deliver_due_messages(now=message.next_attempt_at)["sent"] == 1
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert message.attempts == 2
    assert [r["path"] for r in gateway.requests] == ["/error", "/sms"]
    # Both attempts carried the same idempotency key.
    keys = {r["headers"]["Idempotency-Key"] for r in gateway.requests}
    assert keys == {f"homeclub-message-{message.pk}"}
