"""Member-facing club pages: the QR member card."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render

from homeclub.common.http import AuthedRequest
from homeclub.points.models import Account

from .card import TOKEN_MAX_AGE, card_qr_svg, card_token_issue, member_tier_names
from .models import Member

# Refresh the code a minute before it expires.
REFRESH_SECONDS = max(TOKEN_MAX_AGE - 60, 30)


def _own_member(request: AuthedRequest, member_id: int | None = None) -> Member:
    """The signed-in person's own membership; anyone else's card is a 404."""
    member = Member.objects.select_related("customer").filter(user_id=request.user.pk).first()
    if member is None or (member_id is not None and member.pk != member_id):
        raise Http404()
    return member


@login_required
def card(request: AuthedRequest, member_id: int | None = None) -> HttpResponse:
    member = _own_member(request, member_id)
    account = Account.objects.filter(member=member).only("balance", "pending").first()
    token = card_token_issue(member)
    return render(
        request,
        "club/card.html",
        {
            "member": member,
            "tiers": member_tier_names(member),
            "balance": account.balance if account else 0,
            "pending": account.pending if account else 0,
            "qr": card_qr_svg(token),
            "refresh_seconds": REFRESH_SECONDS,
            "max_age_minutes": TOKEN_MAX_AGE // 60,
        },
    )


@login_required
def card_qr(request: AuthedRequest) -> HttpResponse:
    """A fresh QR code (htmx swaps it in before the old one expires)."""
    member = _own_member(request)
    return render(
        request,
        "club/_card_qr.html",
        {"qr": card_qr_svg(card_token_issue(member)), "refresh_seconds": REFRESH_SECONDS},
    )
