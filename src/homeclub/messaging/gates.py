"""The one place that decides whether (and when) a message may go out.

Consent: under PIPL a marketing message goes only to a channel the person agreed to, and
no recorded consent means no consent. The messaging app holds no consent data itself; the
customer archive (or any domain that records consent) registers a provider::

    register_consent_provider(lambda customer, channel: customer_consents_to(customer, channel))

A provider answers True (consented), False (refused or withdrawn) or None (does not know).
One False wins over any True; without a True, marketing is blocked. Transactional
messages (login codes, receipts, appointment reminders) skip the consent gate.

Quiet hours (settings.HOMECLUB_QUIET_HOURS, Asia/Shanghai): marketing waits for the end
of the quiet period; transactional messages go at once.

Both gates run when a message is queued and again when it is delivered, so consent
withdrawn overnight stops a deferred message, and a retry never lands at 3 a.m.
"""

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone

from .models import OutboundMessage, Purpose

logger = logging.getLogger(__name__)

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
DEFAULT_QUIET_HOURS = (21, 8)

BLOCK_NO_CONSENT = "no_consent"

ConsentProvider = Callable[[Any, str], bool | None]

_CONSENT_PROVIDERS: list[ConsentProvider] = []


def register_consent_provider(fn: ConsentProvider) -> ConsentProvider:
    """Register ``fn(customer, channel) -> bool | None``; usable as a decorator."""
    if fn not in _CONSENT_PROVIDERS:
        _CONSENT_PROVIDERS.append(fn)
    return fn


def unregister_consent_provider(fn: ConsentProvider) -> None:
    if fn in _CONSENT_PROVIDERS:
        _CONSENT_PROVIDERS.remove(fn)


def has_consent(customer: Any, channel: str) -> bool:
    """True only if some provider says yes and none says no."""
    if customer is None:
        return False
    answers: list[bool | None] = []
    for provider in list(_CONSENT_PROVIDERS):
        try:
            answers.append(provider(customer, channel))
        except Exception:
            # Fail closed: a broken provider must not turn into consent.
            logger.exception("consent provider %r failed", provider)
            answers.append(None)
    if any(answer is False for answer in answers):
        return False
    return any(answer is True for answer in answers)


def quiet_hours() -> tuple[int, int]:
    value = getattr(settings, "HOMECLUB_QUIET_HOURS", DEFAULT_QUIET_HOURS)
    start, end = (int(v) for v in value)
    if not (0 <= start <= 23 and 0 <= end <= 23):
        raise ValueError("HOMECLUB_QUIET_HOURS must be two hours between 0 and 23")
    return start, end


def quiet_hours_end(now: dt.datetime | None = None) -> dt.datetime | None:
    """When ``now`` falls in quiet hours, the (aware) moment they end; otherwise None.

    ``(21, 8)`` spans midnight: 21:00–07:59 is quiet. ``(start, start)`` means none.
    """
    start, end = quiet_hours()
    if start == end:
        return None
    local = (now or timezone.now()).astimezone(LOCAL_TZ)
    hour = local.hour
    quiet = (hour >= start or hour < end) if start > end else (start <= hour < end)
    if not quiet:
        return None
    release = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if release <= local:
        release += dt.timedelta(days=1)
    return release


@dataclass(frozen=True)
class GateDecision:
    status: str  # OutboundMessage.Status.QUEUED or .BLOCKED
    block_reason: str = ""
    not_before: dt.datetime | None = None  # set when quiet hours defer the message

    @property
    def blocked(self) -> bool:
        return self.status == OutboundMessage.Status.BLOCKED


def message_gate(
    *, channel: str, purpose: str, customer: Any, now: dt.datetime | None = None
) -> GateDecision:
    """Decide a message's fate: blocked for want of consent, deferred, or go now."""
    now = now or timezone.now()
    if purpose != Purpose.MARKETING:
        return GateDecision(status=OutboundMessage.Status.QUEUED, not_before=None)
    if not has_consent(customer, channel):
        return GateDecision(status=OutboundMessage.Status.BLOCKED, block_reason=BLOCK_NO_CONSENT)
    return GateDecision(status=OutboundMessage.Status.QUEUED, not_before=quiet_hours_end(now))
