"""Test support: a scripted provider adapter and local-time helpers."""

import datetime as dt
from typing import ClassVar

from homeclub.messaging.gates import LOCAL_TZ
from homeclub.messaging.models import OutboundMessage

PATH = "tests.messaging.support.ScriptedBackend"


class ScriptedBackend:
    """Returns or raises the next scripted step; "ok" when the script is empty."""

    script: ClassVar[list[str | Exception]] = []
    sent: ClassVar[list[int]] = []

    def __init__(self, channel: str) -> None:
        self.channel = channel

    def send(self, message: OutboundMessage) -> str:
        step = ScriptedBackend.script.pop(0) if ScriptedBackend.script else "ok"
        if isinstance(step, Exception):
            raise step
        ScriptedBackend.sent.append(message.pk)
        return step

    @classmethod
    def reset(cls, *steps: str | Exception) -> None:
        cls.script[:] = list(steps)
        cls.sent.clear()


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=LOCAL_TZ)


def future_day(days: int = 3) -> dt.date:
    """A day ahead of the real clock, so a deferred message is really in the future."""
    return (dt.datetime.now(LOCAL_TZ) + dt.timedelta(days=days)).date()
