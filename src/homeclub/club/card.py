"""The QR member card: a signed, short-lived token a merchant or the sales office scans.

The QR code on the member's card page encodes ``card_token_issue(member)``: the member's
id and a fingerprint of the card's secret (``Member.card_token``), signed with Django's
``TimestampSigner`` (the project's SECRET_KEY, a salt of its own). It is valid for
``TOKEN_MAX_AGE`` seconds, so a screenshot is useless minutes later, and a new card
(a rotated ``card_token``) voids every token issued for the old one. The token carries
no phone, name or card secret.

The scanner's endpoint (``GET /api/v1/club/card/verify?token=``) is in this module too
(``router``), so the card's whole life is in one place.
"""

import hashlib
from typing import Any

import segno
from django.core import signing
from django.db import transaction
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Schema

from homeclub.common.audit import audit_log
from homeclub.common.errors import Forbidden, ValidationFailed
from homeclub.common.http import AuthedRequest
from homeclub.common.masking import mask_phone
from homeclub.org.roles import Role
from homeclub.org.scoping import scope_of

from .models import Member, MemberTier

TOKEN_MAX_AGE = 300  # seconds
_SALT = "homeclub.club.card.v1"
SCANNER_ROLES = frozenset(
    {
        Role.MERCHANT_STAFF,
        Role.ADMIN,
        Role.CLUB_OPERATOR,
        Role.CUSTOMER_SERVICE,
        Role.SALES_MANAGER,
        Role.SALES_CONSULTANT,
    }
)


def _fingerprint(card_token: str) -> str:
    return hashlib.sha256(card_token.encode()).hexdigest()[:16]


def card_token_issue(member: Member) -> str:
    """A fresh token for the member's QR code (valid ``TOKEN_MAX_AGE`` seconds)."""
    signer = signing.TimestampSigner(salt=_SALT)
    return signer.sign(f"{member.pk}.{_fingerprint(member.card_token)}")


def card_token_verify(token: str, *, max_age: int = TOKEN_MAX_AGE) -> Member:
    """The member a scanned token belongs to, or ValidationFailed with code
    ``card_expired`` (too old: ask the member to refresh the card) or ``card_invalid``
    (tampered, malformed, or the card was replaced)."""
    token = (token or "").strip()
    signer = signing.TimestampSigner(salt=_SALT)
    invalid = ValidationFailed(
        _("This card code is not valid. Ask the member to show the card again."),
        code="card_invalid",
    )
    if not token or len(token) > 200:
        raise invalid
    try:
        value = signer.unsign(token, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise ValidationFailed(
            _("This card code has expired. Ask the member to refresh the card."),
            code="card_expired",
        ) from exc
    except signing.BadSignature as exc:
        raise invalid from exc
    member_id, _sep, fingerprint = value.partition(".")
    if not member_id.isdigit():
        raise invalid
    member = Member.objects.select_related("customer").filter(pk=int(member_id)).first()
    if member is None or _fingerprint(member.card_token) != fingerprint:
        raise invalid
    return member


def card_qr_svg(token: str) -> str:
    """The token as an inline SVG QR code (no external request, no image file)."""
    qr = segno.make(token, error="m")
    return str(qr.svg_inline(scale=5, border=2, title=gettext("Member card")))


def member_tier_names(member: Member) -> list[str]:
    return [
        mt.tier.name
        for mt in MemberTier.objects.filter(member=member, tier_set__is_active=True)
        .select_related("tier")
        .order_by("-tier__points_multiplier", "tier_set_id")
    ]


# --- API for scanners -------------------------------------------------------------------------

router = Router(tags=["club card"])


class CardQuery(Schema):
    token: str


class CardOut(Schema):
    number: str
    status: str
    tiers: list[str]
    mobile: str


@router.get("/verify", response=CardOut)
def card_verify(request: AuthedRequest, query: Query[CardQuery]) -> dict[str, Any]:
    """A merchant's or the sales office's scanner: who is this card? (Phone masked.)"""
    viewer = request.auth
    if scope_of(viewer).role not in SCANNER_ROLES:
        raise Forbidden()
    member = card_token_verify(query.token)
    with transaction.atomic():
        audit_log(actor=viewer, action="club_card_verify", target=member)
    return {
        "number": member.number or "",
        "status": member.status,
        "tiers": member_tier_names(member),
        "mobile": mask_phone(member.customer.mobile),
    }
