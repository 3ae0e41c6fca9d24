"""Expiry notices: members hear 30 days ahead that a batch of their points will expire.

A "batch" is an account's open lots sharing one expiry instant (with the default policy:
everything earned in one calendar year). The message's dedup key names the account and
that instant, so a batch is announced once however often the job runs.
"""

import datetime as dt
import logging

from django.db import transaction
from django.db.models import Sum

from homeclub.club.models import Member
from homeclub.common.errors import ValidationFailed
from homeclub.messaging.defaults import register_default_template
from homeclub.messaging.models import Channel, Purpose
from homeclub.messaging.services import message_send

from . import rules
from .models import Account, Lot

logger = logging.getLogger(__name__)

TEMPLATE = "points_expiry_notice"

register_default_template(
    TEMPLATE,
    "sms",
    "zh-hans",
    body=(
        "【homeclub】尊敬的会员 {{ number }}：您有 {{ points }} 积分将于 {{ expires_on }} 到期，"
        "请及时使用。"
    ),
)
register_default_template(
    TEMPLATE,
    "sms",
    "en",
    body=(
        "[homeclub] Dear member {{ number }}: {{ points }} of your points expire on "
        "{{ expires_on }}. Use them before then."
    ),
)


def dedup_key_for(account_id: int, expires_at: dt.datetime) -> str:
    return f"points-expiry:{account_id}:{expires_at.astimezone(dt.UTC):%Y%m%dT%H%M}"


def points_notify_expiring(*, now: dt.datetime, days: int = rules.NOTICE_DAYS) -> int:
    """Queue one transactional SMS per account and expiry batch due within ``days``.
    Returns how many batches were looked at (already-sent ones are no-ops)."""
    horizon = now + dt.timedelta(days=days)
    batches = (
        Lot.objects.filter(remaining__gt=0, expires_at__gt=now, expires_at__lte=horizon)
        .values("account_id", "expires_at")
        .annotate(total=Sum("remaining"))
        .order_by("account_id", "expires_at")
    )
    accounts = {
        a.pk: a
        for a in Account.objects.filter(pk__in={b["account_id"] for b in batches}).select_related(
            "member__customer", "member__user"
        )
    }
    count = 0
    for batch in batches:
        account = accounts.get(batch["account_id"])
        if account is None or account.member.status == Member.Status.CLOSED:
            continue
        member = account.member
        expires_at = batch["expires_at"]
        # The day the points are last usable, in Shanghai (they expire at its end).
        last_day = (expires_at.astimezone(rules.LOCAL_TZ) - dt.timedelta(seconds=1)).date()
        try:
            with transaction.atomic():
                message_send(
                    channel=Channel.SMS,
                    to=member.customer.mobile,
                    template=TEMPLATE,
                    context={
                        "number": member.number,
                        "points": batch["total"],
                        "expires_on": last_day.isoformat(),
                    },
                    customer=member.customer,
                    user=member.user,
                    purpose=Purpose.TRANSACTIONAL,
                    dedup_key=dedup_key_for(account.pk, expires_at),
                    now=now,
                )
        except ValidationFailed:
            logger.warning("points expiry notice not sent to member %s", member.pk, exc_info=True)
            continue
        count += 1
    return count
