"""The buyer's side of an online opening: sign-in by a one-time SMS link or an SMS code,
favourites, and what a buyer who missed or a sales team after the opening needs to see.

A pledge's buyer is a ``member`` user (external: sees only their own pledges, picks,
and the availability of openings they are admitted to). The link is a signed token
(``django.core.signing``, expiring) naming a ``BuyerSignIn`` row; using it is one
conditional UPDATE of ``used_at``, so it signs in once. Opening it (GET) only shows a
"sign in" button, because SMS and WeChat link previews fetch links too.

The SMS code (``signin_code_send`` / ``signin_code_use``) keeps its rules in the
database row ``BuyerSignInCode``: a resend waits ``CODE_RESEND_SECONDS`` and at most
``CODE_SENDS_PER_HOUR`` codes go to one phone an hour (one conditional UPDATE decides
both); a code lives ``CODE_MINUTES``, is used once and allows ``CODE_ATTEMPTS`` tries
(each try is a conditional UPDATE of the counter before the comparison). An unknown
phone gets the same answer and the same throttles, and no SMS.
"""

import datetime as dt
import hmac
import secrets
from collections.abc import Iterable
from typing import Any

from django.core import signing
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Case, Count, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import Conflict, DomainError, NotFound, ValidationFailed
from homeclub.common.masking import mask_phone
from homeclub.common.models import AuditEvent
from homeclub.common.phones import parse_phone
from homeclub.messaging.defaults import register_default_template
from homeclub.messaging.services import message_send
from homeclub.org.models import User
from homeclub.org.roles import Role

from .models import LIVE_SUBSCRIPTION as LIVE
from .models import (
    BuyerSignIn,
    BuyerSignInCode,
    Favourite,
    Opening,
    OpeningAdmission,
    OpeningPick,
    PickStatus,
    Pledge,
    PledgeStatus,
    Subscription,
    Unit,
    UnitStatus,
)
from .services import _writer_in

SIGNIN_SALT = "homeclub.inventory.signin"
SIGNIN_MINUTES = 30
FAVOURITES_MAX = 5
SIGNIN_TEMPLATE = "inventory_opening_signin"
CODE_TEMPLATE = "login_code"  # messaging's own default: "…验证码是 {{ code }}，5 分钟内有效"
CODE_SALT = "homeclub.inventory.signin_code"
CODE_MINUTES = 5
CODE_ATTEMPTS = 5
CODE_RESEND_SECONDS = 60
CODE_SENDS_PER_HOUR = 5
CODE_SENDS_PER_IP_HOUR = 20

register_default_template(
    SIGNIN_TEMPLATE,
    "sms",
    "zh-hans",
    body="【homeclub】{{ opening }}选房登录链接（{{ minutes }}分钟内有效，仅可使用一次）：{{ url }}",
)
register_default_template(
    SIGNIN_TEMPLATE,
    "sms",
    "en",
    body="[homeclub] Sign in to {{ opening }} (valid {{ minutes }} min, once): {{ url }}",
)


def buyer_ensure(*, actor: Any, pledge: Pledge) -> User:
    """The pledge's buyer login, created (role member, no password) if it has none. The
    pledge gets it by a conditional UPDATE, so two callers end with one buyer."""
    _writer_in(actor, pledge.project_id)
    return _buyer_of(actor=actor, pledge=pledge)


def _buyer_of(*, actor: Any, pledge: Pledge) -> User:
    """``buyer_ensure`` without the writer check: the SMS-code sign-in runs it for an
    anonymous visitor who proved nothing yet except holding the pledge's phone."""
    if pledge.buyer_id:
        return User.objects.get(pk=pledge.buyer_id)
    customer = pledge.customer
    with transaction.atomic():
        user = User.objects.create(
            username=f"buyer-{pledge.project_id}-{pledge.number}-{secrets.token_hex(3)}",
            role=Role.MEMBER,
            name=customer.name,
            mobile=customer.mobile,
        )
        user.set_unusable_password()
        user.save(update_fields=["password"])
        if not Pledge.objects.filter(pk=pledge.pk, buyer__isnull=True).update(buyer=user):
            transaction.set_rollback(True)
            return User.objects.get(pk=Pledge.objects.values_list("buyer_id").get(pk=pledge.pk)[0])
        audit_log(
            actor=actor,
            action=AuditEvent.Action.CREATE,
            target=user,
            changes={"role": Role.MEMBER, "pledge": pledge.pk},
        )
        audit_log(
            actor=actor,
            action="inventory.pledge.buyer",
            target=pledge,
            changes={"buyer": user.pk},
        )
    pledge.buyer_id = user.pk
    return user


def signin_link_send(
    *, actor: Any, pledge: Pledge, opening: Opening, base_url: str, now: dt.datetime | None = None
) -> str:
    """Send the pledge's buyer a one-time sign-in link for ``opening`` by SMS; return the
    link (the console shows it to staff who read it out at the sales office)."""
    _writer_in(actor, opening.project_id)
    if not OpeningAdmission.objects.filter(opening=opening, pledge=pledge).exists():
        raise Conflict(
            _("This pledge is not admitted to this opening."), code="pledge_not_admitted"
        )
    buyer = buyer_ensure(actor=actor, pledge=pledge)
    now = now or timezone.now()
    nonce = secrets.token_hex(16)
    token = signing.dumps({"n": nonce}, salt=SIGNIN_SALT)
    url = f"{base_url.rstrip('/')}/inventory/signin/{token}/"
    with transaction.atomic():
        BuyerSignIn.objects.create(
            nonce=nonce,
            user=buyer,
            opening=opening,
            expires_at=now + dt.timedelta(minutes=SIGNIN_MINUTES),
        )
        message_send(
            channel="sms",
            to=pledge.customer.mobile,
            template=SIGNIN_TEMPLATE,
            context={"opening": opening.name, "url": url, "minutes": SIGNIN_MINUTES},
            user=buyer,
            customer=pledge.customer,
            dedup_key=f"inventory-signin:{nonce}",
            actor=actor,
        )
        audit_log(
            actor=actor,
            action="inventory.buyer.signin_link",
            target=pledge,
            changes={"opening": opening.pk},
        )
    return url


def _link_nonce(token: str) -> str:
    try:
        data = signing.loads(token, salt=SIGNIN_SALT, max_age=SIGNIN_MINUTES * 60)
    except signing.SignatureExpired as exc:
        raise Conflict(_("This sign-in link has expired."), code="link_expired") from exc
    except signing.BadSignature as exc:
        raise NotFound(code="link_invalid") from exc
    return str(data.get("n", ""))


def signin_link_check(*, token: str, now: dt.datetime | None = None) -> BuyerSignIn:
    """The link's row if the link would still sign in, WITHOUT using it: what opening the
    link (GET) shows before the buyer presses "sign in"."""
    now = now or timezone.now()
    link = (
        BuyerSignIn.objects.select_related("opening")
        .filter(
            nonce=_link_nonce(token), used_at__isnull=True, expires_at__gt=now, user__is_active=True
        )
        .first()
    )
    if link is None:
        raise Conflict(
            _("This sign-in link has already been used or has expired."), code="link_used"
        )
    return link


def signin_link_use(*, token: str, now: dt.datetime | None = None) -> BuyerSignIn:
    """The link's row, marked used; refused when forged, expired or already used."""
    now = now or timezone.now()
    nonce = _link_nonce(token)
    with transaction.atomic():
        used = BuyerSignIn.objects.filter(
            nonce=nonce, used_at__isnull=True, expires_at__gt=now, user__is_active=True
        ).update(used_at=now)
        if not used:
            raise Conflict(
                _("This sign-in link has already been used or has expired."), code="link_used"
            )
        link = BuyerSignIn.objects.select_related("user", "opening").get(nonce=nonce)
        audit_log(
            actor=link.user,
            action="inventory.buyer.signin",
            target=link.opening,
            changes={"by": "link"},
        )
    return link


# --- sign-in by SMS code ----------------------------------------------------------------


def _phone_key(phone_e164: str) -> str:
    return salted_hmac(CODE_SALT + ".phone", phone_e164, algorithm="sha256").hexdigest()


def _code_hash(salt: str, code: str) -> str:
    digest = salted_hmac(CODE_SALT + ".code", f"{salt}:{code}", algorithm="sha256").hexdigest()
    return f"{salt}${digest}"


def _code_matches(stored: str, code: str) -> bool:
    salt, _sep, _digest = stored.partition("$")
    return hmac.compare_digest(stored, _code_hash(salt, code))


def _throttled(seconds: int) -> DomainError:
    return DomainError(
        _("Too many codes asked for. Try again in %(seconds)s seconds.") % {"seconds": seconds},
        code="signin_throttled",
        status=429,
    )


def _ip_allows(ip: str, now: dt.datetime) -> bool:
    """Best effort against one address sending codes to many phones (the cache is per
    process without Redis); the per-phone limits below are the database's."""
    if not ip:
        return True
    key = f"inventory:signin-code-ip:{ip}:{now:%Y%m%d%H}"
    cache.add(key, 0, timeout=3600)
    try:
        return cache.incr(key) <= CODE_SENDS_PER_IP_HOUR
    except ValueError:  # evicted between add and incr
        return True


def signin_code_send(
    *, opening: Opening, phone: str, ip: str = "", now: dt.datetime | None = None
) -> str:
    """Send a 6-digit sign-in code to ``phone`` if it is the mobile of a pledge admitted
    to ``opening``; return the masked phone. The caller shows the same page whatever the
    phone: only a malformed number or a throttle is refused, and both the same way for
    every phone. Throttles: one code per phone per CODE_RESEND_SECONDS and at most
    CODE_SENDS_PER_HOUR an hour — decided by one conditional UPDATE of the phone's row."""
    parsed = parse_phone(phone, mobile_only=True)
    masked = mask_phone(parsed.e164)
    now = now or timezone.now()
    if not _ip_allows(ip, now):
        with transaction.atomic(durable=True):
            audit_log(
                actor=None,
                action="inventory.buyer.signin_code_refused",
                target=opening,
                changes={"phone": masked, "why": "address"},
            )
        raise _throttled(3600 - now.minute * 60 - now.second)
    key = _phone_key(parsed.e164)
    pledge = (
        Pledge.objects.filter(
            admissions__opening=opening,
            customer__mobile=parsed.e164,
            status=PledgeStatus.ACTIVE,
        )
        .select_related("customer")
        .order_by("number")
        .first()
    )
    code = f"{secrets.randbelow(10**6):06d}"
    stored = _code_hash(secrets.token_hex(8), code)
    hour_ago = now - dt.timedelta(hours=1)
    wait = 0
    with transaction.atomic(durable=True):
        user = _buyer_of(actor=None, pledge=pledge) if pledge is not None else None
        row, created = _code_row(opening=opening, key=key, user=user, stored=stored, now=now)
        if not created:
            sent = BuyerSignInCode.objects.filter(
                Q(window_start__lte=hour_ago) | Q(window_sends__lt=CODE_SENDS_PER_HOUR),
                pk=row.pk,
                sent_at__lte=now - dt.timedelta(seconds=CODE_RESEND_SECONDS),
            ).update(
                window_sends=Case(
                    When(window_start__lte=hour_ago, then=Value(1)),
                    default=F("window_sends") + 1,
                ),
                window_start=Case(
                    When(window_start__lte=hour_ago, then=Value(now)),
                    default=F("window_start"),
                ),
                user=user,
                code_hash=stored,
                sent_at=now,
                expires_at=now + dt.timedelta(minutes=CODE_MINUTES),
                attempts=0,
                used_at=None,
            )
            if not sent:
                wait = CODE_RESEND_SECONDS - int((now - row.sent_at).total_seconds())
                if wait <= 0:  # the hourly cap, not the resend gap
                    wait = int((row.window_start + dt.timedelta(hours=1) - now).total_seconds())
                wait = max(wait, 1)
        if wait:
            audit_log(
                actor=None,
                action="inventory.buyer.signin_code_refused",
                target=opening,
                changes={"phone": masked, "why": "phone", "wait": wait},
            )
        elif pledge is not None and user is not None:
            message_send(
                channel="sms",
                to=parsed.e164,
                template=CODE_TEMPLATE,
                context={"code": code},
                user=user,
                customer=pledge.customer,
                dedup_key=f"inventory-signin-code:{row.pk}:{stored[:16]}",
            )
        if not wait:
            audit_log(
                actor=None,
                action="inventory.buyer.signin_code",
                target=opening,
                changes={"phone": masked, "pledge": pledge.pk if pledge else None},
            )
    if wait:
        raise _throttled(wait)
    return masked


def _code_row(
    *, opening: Opening, key: str, user: User | None, stored: str, now: dt.datetime
) -> tuple[BuyerSignInCode, bool]:
    """The phone's row, created (with the first code's times) when it has none; a
    concurrent first sender loses the unique constraint and is throttled like a resend."""
    row = BuyerSignInCode.objects.filter(opening=opening, phone_key=key).first()
    if row is not None:
        return row, False
    try:
        with transaction.atomic():
            return (
                BuyerSignInCode.objects.create(
                    opening=opening,
                    phone_key=key,
                    user=user,
                    code_hash=stored,
                    sent_at=now,
                    expires_at=now + dt.timedelta(minutes=CODE_MINUTES),
                    window_start=now,
                ),
                True,
            )
    except IntegrityError:
        return BuyerSignInCode.objects.get(opening=opening, phone_key=key), False


def signin_code_use(
    *, opening: Opening, phone: str, code: str, now: dt.datetime | None = None
) -> User:
    """The buyer the code signs in. Every try first takes one of the code's
    CODE_ATTEMPTS with a conditional UPDATE (so parallel guesses cannot exceed them),
    then compares in constant time; the right code is spent by a second conditional
    UPDATE, so it signs in once. A phone that holds no pledge answers exactly as one
    that does: "wrong" once a code was asked for, "ask for a new code" before."""
    now = now or timezone.now()
    code = "".join(ch for ch in str(code) if not ch.isspace())
    try:
        parsed = parse_phone(phone, mobile_only=True)
    except DomainError as exc:
        raise _code_wrong() from exc
    key = _phone_key(parsed.e164)
    row = (
        BuyerSignInCode.objects.select_related("user")
        .filter(opening=opening, phone_key=key)
        .first()
    )
    with transaction.atomic(durable=True):
        tried = (
            row is not None
            and BuyerSignInCode.objects.filter(
                pk=row.pk,
                used_at__isnull=True,
                expires_at__gt=now,
                attempts__lt=CODE_ATTEMPTS,
                sent_at=row.sent_at,
            ).update(attempts=F("attempts") + 1)
            == 1
        )
        ok = (
            tried
            and row is not None
            and row.user_id is not None
            and len(code) == 6
            and _code_matches(row.code_hash, code)
            and BuyerSignInCode.objects.filter(
                pk=row.pk, used_at__isnull=True, code_hash=row.code_hash
            ).update(used_at=now)
            == 1
        )
        audit_log(
            actor=row.user if ok and row is not None else None,
            action="inventory.buyer.signin" if ok else "inventory.buyer.signin_code_failed",
            target=opening,
            changes={"by": "code", "phone": mask_phone(parsed.e164), "counted": tried},
        )
    if not ok or row is None or row.user is None or not row.user.is_active:
        raise _code_wrong() if tried else _code_spent()
    return row.user


def _code_wrong() -> Conflict:
    return Conflict(_("The code is wrong."), code="code_wrong")


def _code_spent() -> Conflict:
    return Conflict(
        _("This code has expired or was tried too often. Ask for a new code."),
        code="code_spent",
    )


def buyer_pledge(*, user: Any, opening: Opening) -> Pledge:
    """The viewer's own pledge admitted to ``opening`` (the first, if several)."""
    pledge = (
        Pledge.objects.filter(buyer_id=user.pk, admissions__opening=opening)
        .select_related("customer")
        .order_by("number")
        .first()
    )
    if pledge is None:
        raise NotFound(code="pledge_not_found")
    return pledge


def favourites_set(
    *, actor: Any, opening: Opening, pledge: Pledge, unit_ids: Iterable[int]
) -> list[Favourite]:
    """Replace the pledge's favourites for ``opening`` (in order, at most FAVOURITES_MAX,
    only units of the opening). Only the pledge's buyer sets them."""
    if pledge.buyer_id != getattr(actor, "pk", None):
        raise NotFound()
    ids = list(dict.fromkeys(int(u) for u in unit_ids))
    if len(ids) > FAVOURITES_MAX:
        raise ValidationFailed(
            fields={"units": [str(_("Mark at most %(n)d units.") % {"n": FAVOURITES_MAX})]}
        )
    known = set(Unit.objects.filter(pk__in=ids, opening=opening).values_list("pk", flat=True))
    if len(known) != len(ids):
        raise ValidationFailed(fields={"units": [str(_("Some units are not in this opening."))]})
    with transaction.atomic():
        Favourite.objects.filter(opening=opening, pledge=pledge).delete()
        return Favourite.objects.bulk_create(
            [
                Favourite(opening=opening, pledge=pledge, unit_id=u, rank=i)
                for i, u in enumerate(ids)
            ]
        )


def favourite_toggle(*, actor: Any, opening: Opening, pledge: Pledge, unit_id: int) -> bool:
    """Mark or unmark one unit; True when it is now marked."""
    current = list(
        Favourite.objects.filter(opening=opening, pledge=pledge)
        .order_by("rank")
        .values_list("unit_id", flat=True)
    )
    if unit_id in current:
        current.remove(unit_id)
        marked = False
    else:
        current.append(unit_id)
        marked = True
    favourites_set(actor=actor, opening=opening, pledge=pledge, unit_ids=current)
    return marked


# --- selectors ---------------------------------------------------------------------------


def favourite_heat(*, opening_id: int) -> dict[int, int]:
    """unit id → how many pledges marked it, in one query."""
    return dict(
        Favourite.objects.filter(opening_id=opening_id)
        .values("unit_id")
        .annotate(n=Count("id"))
        .values_list("unit_id", "n")
    )


def similar_units(*, unit: Unit, limit: int = 6) -> QuerySet[Unit]:
    """Units of the same opening still available, same layout first, then the same
    building, nearest floor first — what a buyer who missed ``unit`` may take instead."""
    from django.db.models import Case, F, IntegerField, Value, When
    from django.db.models.functions import Abs

    if unit.opening_id is None:
        return Unit.objects.none()
    return (
        Unit.objects.filter(opening_id=unit.opening_id, status=UnitStatus.AVAILABLE)
        .filter(Q(layout=unit.layout) | Q(building_id=unit.building_id))
        .exclude(pk=unit.pk)
        .select_related("building")
        .annotate(
            same_layout=Case(
                When(layout=unit.layout, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            ),
            floor_gap=Abs(F("floor") - unit.floor),
        )
        .order_by("same_layout", "floor_gap", "number")[:limit]
    )


def followup_list(*, opening: Opening) -> QuerySet[Pledge]:
    """Admitted pledges that hold nothing and made no deal through this opening: the
    sales team calls them after the close."""
    won = OpeningPick.objects.filter(
        opening=opening,
        pledge=OuterRef("pk"),
        status__in=[PickStatus.HELD, PickStatus.CONFIRMED],
    )
    deal = Subscription.objects.filter(pledge=OuterRef("pk"), status__in=list(LIVE))
    return (
        Pledge.objects.filter(admissions__opening=opening)
        .annotate(won=Exists(won), deal=Exists(deal))
        .filter(won=False, deal=False)
        .select_related("customer", "consultant")
        .order_by("number")
    )
