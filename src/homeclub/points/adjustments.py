"""Manual adjustments with a second person's approval (four eyes).

Who may do what (decided here, kept in one place):

- request: a club operator, customer service or an admin, for a member they can see;
- approve / reject: an admin, or a club operator — never the person who asked;
- approving calls ``points_adjust`` with the reference ``adjreq-<id>``: the ledger's
  unique source key makes it adjust once however often (or however concurrently) the
  approval is sent. A negative adjustment the balance cannot cover is refused by the
  ledger (``insufficient_points``); the request then stays pending and the error is
  raised to the caller.

States: pending → approving (claimed by an approver; only while the ledger call runs or
after a crash in it — a retry finishes it) → approved, or pending → rejected. A
rejection can only win over a pending request, so a request is never both rejected and
adjusted.
"""

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.club.models import Member
from homeclub.common.audit import audit_log
from homeclub.common.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from homeclub.org.roles import Role
from homeclub.org.scoping import ensure_can_write, get_scoped, scope_of, scoped

from .models import AdjustmentRequest
from .services import points_adjust

REQUESTER_ROLES = frozenset({Role.ADMIN, Role.CLUB_OPERATOR, Role.CUSTOMER_SERVICE})
APPROVER_ROLES = frozenset({Role.ADMIN, Role.CLUB_OPERATOR})
MAX_POINTS = 1_000_000

Status = AdjustmentRequest.Status


def _reference(request: AdjustmentRequest) -> str:
    return f"adjreq-{request.pk}"


def _ensure_member_visible(actor: Any, member: Member) -> None:
    get_scoped(Member.objects.all(), actor, pk=member.pk)


def adjustment_list(*, viewer: Any, status: str | None = None) -> QuerySet[AdjustmentRequest]:
    """Requests on members the viewer can see, newest first."""
    if scope_of(viewer).role not in REQUESTER_ROLES:
        raise NotFound()
    qs = AdjustmentRequest.objects.filter(
        member__in=scoped(Member.objects.all(), viewer).values("pk")
    ).select_related("member", "requested_by", "decided_by", "entry")
    if status:
        qs = qs.filter(status=status)
    return qs


def adjustment_request(
    *, actor: Any, member: Member, points: int, reason: str
) -> AdjustmentRequest:
    """Ask for a manual adjustment of ``points`` (positive or negative); nothing moves
    until another person approves."""
    if scope_of(actor).role not in REQUESTER_ROLES:
        raise NotFound()
    ensure_can_write(actor)
    _ensure_member_visible(actor, member)
    fields: dict[str, list[str]] = {}
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        fields["points"] = [gettext("Enter a whole number other than zero.")]
    elif abs(points) > MAX_POINTS:
        fields["points"] = [gettext("The number is too large.")]
    reason = (reason or "").strip()
    if not reason:
        fields["reason"] = [gettext("This field is required.")]
    if fields:
        raise ValidationFailed(fields=fields)
    with transaction.atomic(durable=True):
        req = AdjustmentRequest.objects.create(
            member=member,
            points=points,
            reason=reason[:200],
            requested_by=actor,
            requested_at=timezone.now(),
        )
        audit_log(
            actor=actor,
            action="points_adjustment_request",
            target=req,
            changes={"member": member.pk, "points": points, "reason": reason[:200]},
        )
    return req


def _ensure_approver(actor: Any, req: AdjustmentRequest) -> None:
    if scope_of(actor).role not in APPROVER_ROLES:
        raise Forbidden(
            _("Only an administrator or a club operator may decide adjustments."),
            code="not_an_approver",
        )
    ensure_can_write(actor)
    _ensure_member_visible(actor, req.member)
    if req.requested_by_id == actor.pk:
        raise Forbidden(
            _("Another person must approve or reject your own request."), code="four_eyes"
        )


def _reload(req: AdjustmentRequest) -> AdjustmentRequest:
    return AdjustmentRequest.objects.select_related("member", "entry").get(pk=req.pk)


def adjustment_approve(
    *, actor: Any, request: AdjustmentRequest, note: str = ""
) -> AdjustmentRequest:
    """Approve and adjust the ledger once (idempotent on the request)."""
    req = _reload(request)
    _ensure_approver(actor, req)
    if req.status == Status.APPROVED:
        return req
    claimed = AdjustmentRequest.objects.filter(
        pk=req.pk, status__in=[Status.PENDING, Status.APPROVING]
    ).update(status=Status.APPROVING)
    if not claimed:
        raise Conflict(_("This request was already decided."), code="already_decided")
    try:
        entry = points_adjust(
            actor=actor,
            member=req.member,
            points=req.points,
            reason=req.reason,
            reference=_reference(req),
        )
    except DomainError:
        # The ledger refused (e.g. not enough points): the request waits again.
        AdjustmentRequest.objects.filter(pk=req.pk, status=Status.APPROVING).update(
            status=Status.PENDING
        )
        raise
    with transaction.atomic(durable=True):
        done = AdjustmentRequest.objects.filter(pk=req.pk, status=Status.APPROVING).update(
            status=Status.APPROVED,
            decided_by=actor,
            decided_at=timezone.now(),
            note=(note or "")[:200],
            entry=entry,
        )
        if done:
            audit_log(
                actor=actor,
                action="points_adjustment_approve",
                target=req,
                changes={"entry": entry.pk, "points": req.points, "note": (note or "")[:200]},
            )
    return _reload(req)


def adjustment_reject(
    *, actor: Any, request: AdjustmentRequest, note: str = ""
) -> AdjustmentRequest:
    """Reject a pending request; nothing moves in the ledger."""
    req = _reload(request)
    _ensure_approver(actor, req)
    if not (note or "").strip():
        raise ValidationFailed(fields={"note": [gettext("Say why the request is rejected.")]})
    with transaction.atomic(durable=True):
        done = AdjustmentRequest.objects.filter(pk=req.pk, status=Status.PENDING).update(
            status=Status.REJECTED,
            decided_by=actor,
            decided_at=timezone.now(),
            note=note.strip()[:200],
        )
        if not done:
            raise Conflict(_("This request was already decided."), code="already_decided")
        audit_log(
            actor=actor,
            action="points_adjustment_reject",
            target=req,
            changes={"note": note.strip()[:200]},
        )
    return _reload(req)
