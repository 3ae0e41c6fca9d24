"""The console and file adapters of the demo, and the backend setting."""

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from homeclub.messaging.backends import ConsoleBackend, FileBackend, HttpBackend, get_backend
from homeclub.messaging.models import OutboundMessage

Status = OutboundMessage.Status


def test_file_backend_appends_json_lines_creating_the_directory(
    tmp_path: Path, settings: Any, send: Callable[..., OutboundMessage]
) -> None:
    folder = tmp_path / "var" / "messages"
    settings.HOMECLUB_MESSAGE_DIR = folder
    settings.HOMECLUB_SMS_BACKEND = "file"
    settings.HOMECLUB_WECHAT_BACKEND = "file"
    first = send(context={"code": "100001"})
    second = send(context={"code": "100002"})
    assert first.status == second.status == Status.SENT
    lines = (folder / "sms.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["message_id"] for r in records] == [first.pk, second.pk]
    assert records[0]["to"] == "+8613800138000"
    assert records[0]["text"] == "【homeclub】您的验证码是 100001，5 分钟内有效。"
    assert records[0]["id"] == first.provider_message_id
    assert "验证码" in lines[0]  # readable UTF-8, not ASCII escapes
    assert not (folder / "wechat.jsonl").exists()


def test_console_backend_logs_a_masked_line(
    settings: Any, send: Callable[..., OutboundMessage], caplog: Any
) -> None:
    settings.HOMECLUB_SMS_BACKEND = "console"
    with caplog.at_level(logging.INFO, logger="homeclub.messaging.backends"):
        message = send(context={"code": "424242"})
    assert message.status == Status.SENT
    assert message.provider_message_id.startswith("console-")
    [line] = [r.getMessage() for r in caplog.records if r.name == "homeclub.messaging.backends"]
    assert "138****8000" in line
    assert "+8613800138000" not in line
    assert "424242" in line


def test_backend_setting_picks_the_adapter(settings: Any) -> None:
    settings.HOMECLUB_SMS_BACKEND = "file"
    settings.HOMECLUB_WECHAT_BACKEND = "console"
    assert isinstance(get_backend("sms"), FileBackend)
    assert isinstance(get_backend("wechat"), ConsoleBackend)
    settings.HOMECLUB_SMS_BACKEND = "http"
    assert isinstance(get_backend("sms"), HttpBackend)
    settings.HOMECLUB_SMS_BACKEND = "tests.messaging.support.ScriptedBackend"
    assert type(get_backend("sms")).__name__ == "ScriptedBackend"
    settings.HOMECLUB_SMS_BACKEND = "no.such.Backend"
    with pytest.raises(ImportError):
        get_backend("sms")
