"""The buyer's side of an online opening: sign-in by a one-time SMS link, favourites,
and what a buyer who missed or a sales team after the opening needs to see.

A pledge's buyer is a ``member`` user (external: sees only their own pledges, picks,
and the availability of openings they are admitted to). The link is a signed token
(``django.core.signing``, expiring) naming a ``BuyerSignIn`` row; using it is one
conditional UPDATE of ``used_at``, so it signs in once.
"""

import datetime as dt
import secrets
from collections.abc import Iterable
from typing import Any

from django.core import signing
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import Conflict, NotFound, ValidationFailed
from homeclub.messaging.defaults import register_default_template
from homeclub.messaging.services import message_send
from homeclub.org.models import User
from homeclub.org.roles import Role

from .models import LIVE_SUBSCRIPTION as LIVE
from .models import (
    BuyerSignIn,
    Favourite,
    Opening,
    OpeningAdmission,
    OpeningPick,
    PickStatus,
    Pledge,
    Subscription,
    Unit,
    UnitStatus,
)
from .services import _writer_in

SIGNIN_SALT = "homeclub.inventory.signin"
SIGNIN_MINUTES = 30
FAVOURITES_MAX = 5
SIGNIN_TEMPLATE = "inventory_opening_signin"

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


def signin_link_use(*, token: str, now: dt.datetime | None = None) -> BuyerSignIn:
    """The link's row, marked used; refused when forged, expired or already used."""
    now = now or timezone.now()
    try:
        data = signing.loads(token, salt=SIGNIN_SALT, max_age=SIGNIN_MINUTES * 60)
    except signing.SignatureExpired as exc:
        raise Conflict(_("This sign-in link has expired."), code="link_expired") from exc
    except signing.BadSignature as exc:
        raise NotFound(code="link_invalid") from exc
    nonce = str(data.get("n", ""))
    with transaction.atomic():
        used = BuyerSignIn.objects.filter(
            nonce=nonce, used_at__isnull=True, expires_at__gt=now, user__is_active=True
        ).update(used_at=now)
        if not used:
            raise Conflict(
                _("This sign-in link has already been used or has expired."), code="link_used"
            )
        link = BuyerSignIn.objects.select_related("user", "opening").get(nonce=nonce)
        audit_log(actor=link.user, action="inventory.buyer.signin", target=link.opening, changes={})
    return link


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
