"""Sales-control board (销控表): a page and the live fragment htmx polls."""

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.db import OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from homeclub.common.errors import Busy, DomainError, NotFound
from homeclub.common.http import AuthedRequest
from homeclub.common.middleware import client_ip
from homeclub.org.scoping import projects_for, scope_of

from .admission import admitted
from .buyers import (
    FAVOURITES_MAX,
    buyer_pledge,
    favourite_heat,
    favourite_toggle,
    followup_list,
    signin_code_send,
    signin_code_use,
    signin_link_check,
    signin_link_use,
    similar_units,
)
from .models import Favourite, Opening, OpeningPick, PickStatus, Unit, UnitStatus
from .openings import opening_confirm, opening_pick
from .selectors import board_snapshot, opening_snapshot, project_for


def _context(request: AuthedRequest, project_id: int) -> dict[str, object]:
    project = project_for(viewer=request.user, project_id=project_id)
    version, data = board_snapshot(project_id=project.pk)
    return {
        "project": project,
        "version": version,
        "board": data,
        "statuses": UnitStatus.choices,
    }


@login_required
def board(request: AuthedRequest, project_id: int) -> HttpResponse:
    return render(request, "inventory/board.html", _context(request, project_id))


@login_required
def board_live(request: AuthedRequest, project_id: int) -> HttpResponse:
    """The board body when the project's version moved since ``?v=``; else 204, which
    htmx leaves in place — a poll with nothing new renders nothing."""
    context = _context(request, project_id)
    if request.GET.get("v") == str(context["version"]):
        return HttpResponse(status=204)
    return render(request, "inventory/_board_live.html", context)


@login_required
def board_index(request: AuthedRequest) -> HttpResponse:
    """The projects whose board the viewer may open; straight to it when there is one."""
    projects = list(projects_for(request.user).select_related("parent").order_by("path"))
    if len(projects) == 1:
        return redirect("inventory:board", project_id=projects[0].pk)
    return render(request, "inventory/board_index.html", {"projects": projects})


# --- online opening: the buyer's phone page and the sales team's page ---------------------


@never_cache
def signin(request: HttpRequest, token: str) -> HttpResponse:
    """A one-time link from the SMS. Opening it shows a "sign in" button; only pressing
    it (POST) uses the link, because SMS and WeChat previews open links too."""
    try:
        if request.method == "POST":
            link = signin_link_use(token=token)
        else:
            link = signin_link_check(token=token)
    except DomainError as exc:
        return render(
            request, "inventory/signin_failed.html", {"message": exc.message}, status=exc.status
        )
    if request.method != "POST":
        return render(request, "inventory/signin_confirm.html", {"opening": link.opening})
    login(request, link.user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect("inventory:opening_phone", opening_id=link.opening_id)


SIGNIN_PHONE_KEY = "inventory_signin_phone"


def _opening_or_404(opening_id: int) -> Opening:
    opening = Opening.objects.filter(pk=opening_id).first()
    if opening is None:
        raise Http404
    return opening


def _send_code(request: HttpRequest, opening: Opening, phone: str) -> DomainError | None:
    try:
        masked = signin_code_send(opening=opening, phone=phone, ip=client_ip(request) or "")
    except DomainError as exc:
        return exc
    request.session[SIGNIN_PHONE_KEY] = {"opening": opening.pk, "phone": phone, "masked": masked}
    return None


def _refusal(exc: DomainError) -> str:
    return "; ".join(m for ms in exc.fields.values() for m in ms) or str(exc.message)


@never_cache
def opening_signin(request: HttpRequest, opening_id: int) -> HttpResponse:
    """Sign-in by SMS code, step 1: the pledge's mobile. Every well-formed number gets
    the same answer (the code page), whether or not it holds a pledge."""
    opening = _opening_or_404(opening_id)
    error, status = "", 200
    if request.method == "POST":
        phone = str(request.POST.get("phone") or "")
        exc = _send_code(request, opening, phone)
        if exc is None:
            return redirect("inventory:opening_signin_code", opening_id=opening.pk)
        error, status = _refusal(exc), (422 if exc.status == 400 else exc.status)
    return render(
        request,
        "inventory/signin_phone.html",
        {"opening": opening, "error": error, "phone": request.POST.get("phone", "")},
        status=status,
    )


@never_cache
def opening_signin_code(request: HttpRequest, opening_id: int) -> HttpResponse:
    """Step 2: the 6-digit code (or, with ``resend``, another code to the same phone)."""
    opening = _opening_or_404(opening_id)
    held = request.session.get(SIGNIN_PHONE_KEY) or {}
    if held.get("opening") != opening.pk:
        return redirect("inventory:opening_signin", opening_id=opening.pk)
    phone = str(held.get("phone") or "")
    error, notice, status = "", "", 200
    if request.method == "POST" and request.POST.get("resend"):
        exc = _send_code(request, opening, phone)
        if exc is None:
            notice = str(_("A new code was sent."))
        else:
            error, status = _refusal(exc), exc.status
    elif request.method == "POST":
        try:
            user = signin_code_use(
                opening=opening, phone=phone, code=str(request.POST.get("code") or "")
            )
        except DomainError as exc:
            error, status = _refusal(exc), (422 if exc.code == "code_wrong" else exc.status)
        else:
            request.session.pop(SIGNIN_PHONE_KEY, None)
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("inventory:opening_phone", opening_id=opening.pk)
    return render(
        request,
        "inventory/signin_code.html",
        {
            "opening": opening,
            "masked": held.get("masked", ""),
            "error": error,
            "notice": notice,
        },
        status=status,
    )


def _phone_context(request: AuthedRequest, opening: Opening) -> dict[str, Any]:
    pledge = buyer_pledge(user=request.user, opening=opening)
    now = timezone.now()
    version, body = opening_snapshot(opening_id=opening.pk)
    units = json.loads(body)["units"]
    favs = list(
        Favourite.objects.filter(opening=opening, pledge=pledge)
        .order_by("rank")
        .values_list("unit_id", flat=True)
    )
    pick = (
        OpeningPick.objects.filter(opening=opening, pledge=pledge)
        .exclude(status=PickStatus.EXPIRED)
        .select_related("unit")
        .first()
    )
    return {
        "opening": opening,
        "pledge": pledge,
        "version": version,
        "units": units,
        "favourites": favs,
        "favourites_max": FAVOURITES_MAX,
        "started": now >= opening.start_at,
        "server_now_ms": int(now.timestamp() * 1000),
        "start_ms": int(opening.start_at.timestamp() * 1000),
        "pick": pick,
        "sold_out": not any(u["status"] == UnitStatus.AVAILABLE for u in units),
    }


def _opening_for_buyer(request: AuthedRequest, opening_id: int) -> Opening:
    opening = Opening.objects.filter(pk=opening_id).first()
    if opening is None:
        raise Http404
    return opening


def opening_phone(request: AuthedRequest, opening_id: int) -> HttpResponse:
    """The buyer's phone page: countdown and favourites before the start (server clock),
    live availability and a pick button per unit from it, then confirm. A visitor not
    signed in goes to the SMS-code sign-in of this opening."""
    if not request.user.is_authenticated:
        return redirect("inventory:opening_signin", opening_id=opening_id)
    opening = _opening_for_buyer(request, opening_id)
    try:
        context = _phone_context(request, opening)
    except NotFound as exc:
        raise Http404 from exc
    return render(request, "inventory/opening_phone.html", context)


@login_required
def opening_phone_live(request: AuthedRequest, opening_id: int) -> HttpResponse:
    """The availability list; 204 (htmx keeps what it has) when the version is unchanged."""
    opening = _opening_for_buyer(request, opening_id)
    version, _body = opening_snapshot(opening_id=opening.pk)
    if request.GET.get("v") == str(version) and request.GET.get("s") == "1":
        return HttpResponse(status=204)
    try:
        context = _phone_context(request, opening)
    except NotFound as exc:
        raise Http404 from exc
    return render(request, "inventory/_opening_units.html", context)


@login_required
@require_POST
def opening_phone_favourite(request: AuthedRequest, opening_id: int, unit_id: int) -> HttpResponse:
    opening = _opening_for_buyer(request, opening_id)
    try:
        pledge = buyer_pledge(user=request.user, opening=opening)
        favourite_toggle(actor=request.user, opening=opening, pledge=pledge, unit_id=unit_id)
    except NotFound as exc:
        raise Http404 from exc
    except DomainError as exc:
        messages.error(
            request, "; ".join(m for ms in exc.fields.values() for m in ms) or str(exc.message)
        )
    return redirect("inventory:opening_phone", opening_id=opening.pk)


@login_required
@require_POST
def opening_phone_pick(request: AuthedRequest, opening_id: int, unit_id: int) -> HttpResponse:
    opening = _opening_for_buyer(request, opening_id)
    missed: Unit | None = None
    try:
        pledge = buyer_pledge(user=request.user, opening=opening)
        unit = Unit.objects.filter(pk=unit_id, opening=opening).first()
        if unit is None:
            raise Http404
        try:
            with admitted(request):
                opening_pick(actor=request.user, opening=opening, pledge=pledge, unit=unit)
        except OperationalError as exc:
            raise Busy() from exc
    except NotFound as exc:
        raise Http404 from exc
    except DomainError as exc:
        messages.error(request, str(exc.message))
        if exc.code == "unit_not_available":
            missed = unit
    if missed is not None:
        return redirect(
            f"{reverse('inventory:opening_phone', args=[opening.pk])}?missed={missed.pk}"
        )
    return redirect("inventory:opening_phone", opening_id=opening.pk)


@login_required
@require_POST
def opening_phone_confirm(request: AuthedRequest, pick_id: int) -> HttpResponse:
    pick = OpeningPick.objects.select_related("pledge", "unit").filter(pk=pick_id).first()
    if pick is None or pick.pledge.buyer_id != request.user.pk:
        raise Http404
    try:
        try:
            opening_confirm(actor=request.user, pick=pick)
        except OperationalError as exc:
            raise Busy() from exc
    except DomainError as exc:
        messages.error(request, str(exc.message))
    return redirect("inventory:opening_phone", opening_id=pick.opening_id)


@login_required
def opening_similar(request: AuthedRequest, opening_id: int, unit_id: int) -> HttpResponse:
    unit = Unit.objects.filter(pk=unit_id, opening_id=opening_id).first()
    if unit is None:
        raise Http404
    return render(
        request,
        "inventory/_similar_units.html",
        {"similar": list(similar_units(unit=unit)), "missed": unit, "opening_id": opening_id},
    )


@login_required
def opening_staff(request: AuthedRequest, opening_id: int) -> HttpResponse:
    """The sales team's page: favourites heat map (counts per unit, coloured) and the
    follow-up list of admitted pledges that got nothing."""
    opening = Opening.objects.filter(pk=opening_id).select_related("project").first()
    if opening is None or not scope_of(request.user).sees_project(opening.project_id):
        raise Http404
    heat = favourite_heat(opening_id=opening.pk)
    top = max(heat.values(), default=0)
    units = [
        {
            "id": u.pk,
            "number": u.number,
            "building": u.building.name,
            "status": u.status,
            "count": heat.get(u.pk, 0),
            "level": (4 * heat.get(u.pk, 0) + top - 1) // top if top else 0,
        }
        for u in Unit.objects.filter(opening=opening)
        .select_related("building")
        .order_by("building__sort", "-floor", "number")
    ]
    return render(
        request,
        "inventory/opening_staff.html",
        {
            "opening": opening,
            "units": units,
            "followups": list(followup_list(opening=opening)),
            "closed": opening.end_at is not None and opening.end_at <= timezone.now(),
        },
    )
