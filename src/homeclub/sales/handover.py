"""A leaving consultant's customers move in one step (离职交接): the data is the company's,
not the consultant's. The manager picks, per project, a colleague or the public pool."""

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import NotFound, ValidationFailed
from homeclub.common.locking import lock_rows
from homeclub.customers.models import CustomerProject
from homeclub.org.models import OrgNode, User
from homeclub.org.roles import Role
from homeclub.org.scoping import scope_of

from .followups import ensure_manager, local_day
from .models import Assignment, Handover, PoolMove
from .ownership import owner_set

Targets = dict[int, User | None]


def _serves(user: User, project_id: int) -> bool:
    """An active consultant attached to the project (or to its city or group)."""
    return (
        user.is_active
        and user.role == Role.SALES_CONSULTANT
        and scope_of(user).sees_project(project_id)
    )


def handover_projects(*, viewer: Any, consultant: User) -> list[tuple[OrgNode, int]]:
    """The projects of the manager's scope where ``consultant`` owns customers, with how
    many (what the handover page asks a target for)."""
    ensure_manager(viewer, write=False)
    scope = scope_of(viewer)
    qs = CustomerProject.objects.filter(owner=consultant)
    if not scope.all_projects:
        qs = qs.filter(project_id__in=scope.project_ids)
    counts: dict[int, int] = {}
    for pid in qs.values_list("project_id", flat=True):
        counts[pid] = counts.get(pid, 0) + 1
    return [(p, counts[p.pk]) for p in OrgNode.objects.filter(pk__in=counts).order_by("path")]


def consultant_handover(
    *,
    actor: Any,
    consultant: User,
    to: Targets | User | None,
    reason: str,
) -> Handover:
    """Move every customer ``consultant`` owns in the manager's projects, in one
    transaction: to the colleague chosen for that project (an active consultant of it) or,
    for ``None``, to the public pool. ``to`` is one target for every project or a dict
    ``{project_id: target}`` naming each project. Afterwards the consultant owns nothing
    there: their rows are locked, so a row assigned to them meanwhile is waited for and
    moved too. The user account itself is left to the org admin."""
    ensure_manager(actor)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed(fields={"reason": [_("Give a reason for the handover.")]})
    if len(reason) > 300:
        raise ValidationFailed(
            fields={"reason": [_("Keep the note under %(max)s characters.") % {"max": 300}]}
        )
    scope = scope_of(actor)
    if isinstance(to, dict):
        for pid in to:
            if not scope.sees_project(pid):
                raise NotFound(_("Project not found."), code="project_not_found")
    rows_qs = CustomerProject.objects.filter(owner=consultant).select_related("customer")
    if not scope.all_projects:
        rows_qs = rows_qs.filter(project_id__in=scope.project_ids)
    with transaction.atomic(durable=True):
        rows = lock_rows(rows_qs)
        if not rows:
            raise ValidationFailed(
                _("This consultant owns no customers in your projects."),
                code="nothing_to_hand_over",
            )
        targets: Targets = {}
        errors: list[str] = []
        names = dict(
            OrgNode.objects.filter(pk__in={r.project_id for r in rows}).values_list("pk", "name")
        )
        for pid in sorted({r.project_id for r in rows}):
            if isinstance(to, dict):
                if pid not in to:
                    errors.append(
                        _("Choose who takes the customers in %(project)s.")
                        % {"project": names[pid]}
                    )
                    continue
                target = to[pid]
            else:
                target = to
            if target is not None and (target.pk == consultant.pk or not _serves(target, pid)):
                errors.append(
                    _("%(name)s is not an active consultant of %(project)s.")
                    % {"name": target.name or target.username, "project": names[pid]}
                )
                continue
            targets[pid] = target
        if errors:
            raise ValidationFailed(fields={"to": errors})
        moves: list[dict[str, Any]] = []
        day = local_day()
        for link in rows:
            target = targets[link.project_id]
            owner_set(
                actor=actor,
                link=link,
                consultant=target,
                kind=Assignment.Kind.HANDOVER,
                reason=reason,
                in_pool=target is None,
            )
            if target is None:
                PoolMove.objects.create(
                    project_id=link.project_id,
                    customer_id=link.customer_id,
                    kind=PoolMove.Kind.RELEASED,
                    consultant=consultant,
                    reason=reason,
                    day=day,
                )
            moves.append(
                {
                    "customer": link.customer_id,
                    "project": link.project_id,
                    "to": target.pk if target is not None else None,
                }
            )
        handover = Handover.objects.create(
            from_consultant=consultant,
            actor=actor,
            reason=reason,
            moves=moves,
            moved_count=len(moves),
        )
        audit_log(
            actor=actor,
            action="sales.handover",
            target=handover,
            changes={
                "from": consultant.pk,
                "count": len(moves),
                "targets": {pid: (t.pk if t else None) for pid, t in targets.items()},
                "reason": reason,
            },
        )
    return handover
