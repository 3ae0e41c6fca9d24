"""Reception (来访登记): who is this visitor, who gets the credit, who serves them.

``visit_register`` is the one entry: it finds or creates the customer by phone, decides
new / group / returning, asks every claim source and the attribution rules who gets the
credit, assigns the consultant and moves the pipeline — all in one transaction, so a visit
never exists without its attribution and assignment.
"""

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import Forbidden, NotFound, ValidationFailed
from homeclub.common.locking import lock_rows
from homeclub.common.phones import InvalidPhone, parse_phone, parse_phone_field
from homeclub.customers.models import (
    ContactSource,
    Customer,
    CustomerPhone,
    CustomerProject,
    PipelineStage,
    TimelineEvent,
)
from homeclub.customers.services import customer_find_or_create
from homeclub.customers.timeline import timeline_append
from homeclub.org.models import OrgNode, User
from homeclub.org.roles import Role
from homeclub.org.scoping import ensure_can_write, ensure_project_in_scope, get_scoped, scope_of

from .assignment import consultant_serves, next_on_duty
from .attribution import attribution_store, collect_claims
from .models import Assignment, MediaSource, Novelty, Visit, VisitCompanion, VisitKind
from .ownership import owner_set
from .pipeline import stage_move
from .rules import VisitFacts, attribute
from .ruleset import as_rules, ruleset_current

RECEPTION_ROLES = frozenset({Role.ADMIN, Role.SALES_MANAGER, Role.SALES_CONSULTANT})
# A second registration of the same person at the same project within this time is the
# same visit (two receptionists, a double tap, a retried request): it returns the first.
SAME_VISIT = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class Recognition:
    """What reception learns from a phone number before registering."""

    novelty: str
    customer: Customer | None
    link: CustomerProject | None
    other_projects: int
    last_visit_at: dt.datetime | None

    @property
    def consultant(self) -> User | None:
        return self.link.owner if self.link is not None else None


def _phone(raw: str) -> str:
    return parse_phone_field(raw, "phone").e164


def _ensure_reception(actor: Any, project_id: int) -> None:
    ensure_can_write(actor)
    ensure_project_in_scope(actor, project_id)
    if scope_of(actor).role not in RECEPTION_ROLES:
        raise Forbidden(_("Only sales office staff may register visits."), code="reception_only")


def _customer_id_for(e164: str) -> int | None:
    pk = CustomerPhone.objects.filter(number=e164).values_list("customer_id", flat=True).first()
    if pk is None:
        pk = Customer.objects.filter(mobile=e164).values_list("pk", flat=True).first()
    return pk


def recognise(*, viewer: Any, project: OrgNode, phone: str) -> Recognition:
    """New to the group, known from another project (集团老客) or returning here. Reception
    learns the relation to *this* project in full and only a count of other projects —
    never another project's consultant or data."""
    ensure_project_in_scope(viewer, project.pk)
    e164 = _phone(phone)
    pk = _customer_id_for(e164)
    if pk is None:
        return Recognition(Novelty.NEW, None, None, 0, None)
    links = list(
        CustomerProject.objects.filter(customer_id=pk).select_related(
            "owner", "customer", "project"
        )
    )
    here = next((link for link in links if link.project_id == project.pk), None)
    others = len(links) - (1 if here else 0)
    if here is not None and (here.visit_count or here.last_visit_at):
        return Recognition(Novelty.RETURNING, here.customer, here, others, here.last_visit_at)
    customer = links[0].customer if links else Customer.objects.get(pk=pk)
    if here is not None:
        # Known to this project (imported, reported) but never visited: not a returning
        # visitor; the group/new distinction still tells reception whether we know them.
        return Recognition(Novelty.GROUP if others else Novelty.NEW, customer, here, others, None)
    return Recognition(Novelty.GROUP, customer, None, others, None)


def _clean(
    *,
    kind: str,
    party_size: int,
    media_source: str,
    agent: User | None,
    name: str,
    companions: list[dict[str, str]],
) -> None:
    errors: dict[str, list[str]] = {}
    if kind not in VisitKind.values:
        errors["kind"] = [_("Choose a visit type.")]
    if not isinstance(party_size, int) or isinstance(party_size, bool) or not 1 <= party_size <= 50:
        errors["party_size"] = [_("Enter a party size from 1 to 50.")]
    if media_source and media_source not in MediaSource.values:
        errors["media_source"] = [_("Choose a media source.")]
    if kind == VisitKind.AGENT:
        if agent is None:
            errors["agent"] = [_("Choose the agent who accompanies the visit.")]
        elif agent.role != Role.CHANNEL_AGENT or not agent.is_active:
            errors["agent"] = [_("This user is not an active channel agent.")]
    elif agent is not None:
        errors["agent"] = [_("Only an agent-accompanied visit names an agent.")]
    if len(name) > 60:
        errors["name"] = [_("Ensure this value has at most 60 characters.")]
    if len(companions) > 20:
        errors["companions"] = [_("At most 20 companions.")]
    for i, c in enumerate(companions):
        if c.get("phone"):
            try:
                parse_phone(c["phone"])
            except InvalidPhone:
                errors[f"companions.{i}.phone"] = [_("Enter a valid Chinese mobile number.")]
    if errors:
        raise ValidationFailed(fields=errors)


def visit_register(
    *,
    actor: Any,
    project: OrgNode,
    phone: str,
    name: str = "",
    kind: str = VisitKind.WALK_IN,
    party_size: int = 1,
    media_source: str = "",
    companions: list[dict[str, str]] | None = None,
    agent: User | None = None,
    note: str = "",
    visited_at: dt.datetime | None = None,
) -> tuple[Visit, bool]:
    """Register a visit: ``(visit, created)``. Keeps: one customer per phone (the archive's
    unique constraints), one visit per person per project within ``SAME_VISIT`` (the lock on
    the customer's project row), one assignment per visit (a unique constraint) and one
    current attribution per customer and project (a unique constraint)."""
    _ensure_reception(actor, project.pk)
    companions = [
        {k: str(v or "").strip() for k, v in c.items() if k in ("name", "phone", "relation")}
        for c in companions or []
    ]
    name = (name or "").strip()
    _clean(
        kind=kind,
        party_size=party_size,
        media_source=media_source,
        agent=agent,
        name=name,
        companions=companions,
    )
    e164 = _phone(phone)
    now = timezone.now()
    at = visited_at or now
    if timezone.is_naive(at) or at > now + dt.timedelta(minutes=5):
        raise ValidationFailed(
            fields={"visited_at": [_("The visit time cannot be in the future.")]}
        )
    # A name is needed only for someone new; look them up only when none was typed
    # (find-or-create below looks the number up anyway).
    if not name and _customer_id_for(e164) is None:
        raise ValidationFailed(fields={"name": [_("Enter the visitor's name.")]})
    customer, _created = customer_find_or_create(
        actor=actor,
        name=name or "-",
        mobile=e164,
        project=project,
        source=ContactSource.VISIT,
        assign_owner=False,
    )
    rs = ruleset_current(project.pk, at)
    with transaction.atomic(durable=True):
        link = lock_rows(
            CustomerProject.objects.select_related("customer", "owner").filter(
                customer=customer, project=project
            )
        )[0]
        recent = (
            Visit.objects.filter(
                customer=customer, project=project, visited_at__gte=at - SAME_VISIT
            )
            .order_by("-visited_at")
            .first()
        )
        if recent is not None:
            return recent, False
        novelty = _novelty(link)
        visit = Visit.objects.create(
            project=project,
            customer=customer,
            visited_at=at,
            kind=kind,
            party_size=party_size,
            media_source=media_source if kind != VisitKind.AGENT else "",
            novelty=novelty,
            is_first_visit=link.visit_count == 0 and link.last_visit_at is None,
            agent=agent,
            registered_by=actor,
            note=note[:300],
        )
        # Attribution.
        claims = collect_claims(
            customer=customer, project_id=project.pk, at=at, rule_set=rs, exclude_visit=visit.pk
        )
        if agent is not None:
            claims = [
                replace(c, accompanied=True)
                if c.kind == "channel_report" and c.claimant_id == agent.pk
                else c
                for c in claims
            ]
        decision = attribute(_facts(visit), claims, as_rules(rs))
        attribution_store(actor=actor, visit=visit, link=link, decision=decision, rule_set=rs)
        # Assignment.
        consultant, how = _choose_consultant(link, project.pk, at)
        if consultant is not None:
            owner_set(actor=actor, link=link, consultant=consultant, kind=how, visit=visit)
        Visit.objects.filter(pk=visit.pk).update(consultant=consultant)
        visit.consultant = consultant
        # The consultant owes the visitor a follow-up the same day (it puts them on the
        # consultant's "today" list).
        due = _end_of_day(at)
        CustomerProject.objects.filter(pk=link.pk).update(
            last_visit_at=at,
            visit_count=F("visit_count") + 1,
            next_follow_up_at=(
                due
                if link.next_follow_up_at is None or link.next_follow_up_at > due
                else link.next_follow_up_at
            ),
            updated_at=now,
        )
        if link.stage == PipelineStage.LEAD:
            stage_move(actor=actor, link=link, to=PipelineStage.VISITED, reason=_("First visit"))
        for c in companions:
            VisitCompanion.objects.create(
                visit=visit, name=c.get("name", "")[:60], relation=c.get("relation", "")[:20]
            )
        timeline_append(
            customer=customer,
            kind=TimelineEvent.Kind.VISIT,
            occurred_at=at,
            summary=_("%(kind)s at %(project)s (%(novelty)s), party of %(n)s")
            % {
                "kind": VisitKind(kind).label,
                "project": project.name,
                "novelty": Novelty(novelty).label,
                "n": party_size,
            },
            actor=actor,
            source="sales",
            data={"visit": visit.pk, "consultant": getattr(consultant, "pk", None)},
        )
        audit_log(
            actor=actor,
            action="sales.visit.register",
            target=visit,
            changes={
                "customer": customer.pk,
                "kind": kind,
                "novelty": novelty,
                "consultant": getattr(consultant, "pk", None),
            },
        )
    # Companions with a phone become customers of their own (after the visit commits: a
    # companion's bad luck with a duplicate must not undo the visit).
    for c in companions:
        if c.get("phone"):
            companion, _new = customer_find_or_create(
                actor=actor,
                name=c.get("name") or "-",
                mobile=c["phone"],
                project=project,
                source=ContactSource.VISIT,
                assign_owner=False,
            )
            VisitCompanion.objects.filter(
                visit=visit, name=c.get("name", "")[:60], customer__isnull=True
            ).update(customer=companion)
    return visit, True


def _end_of_day(at: dt.datetime) -> dt.datetime:
    local = timezone.localtime(at)
    return local.replace(hour=23, minute=59, second=0, microsecond=0)


def _novelty(link: CustomerProject) -> str:
    if link.visit_count or link.last_visit_at:
        return Novelty.RETURNING
    if CustomerProject.objects.filter(customer_id=link.customer_id).exclude(pk=link.pk).exists():
        return Novelty.GROUP
    return Novelty.NEW


def _facts(visit: Visit) -> VisitFacts:
    return VisitFacts(visited_at=visit.visited_at, kind=visit.kind, agent_id=visit.agent_id)


def _choose_consultant(link: CustomerProject, project_id: int, at: dt.datetime) -> tuple[Any, str]:
    """A returning customer goes to their consultant if still active here; anyone else to
    the next consultant on duty."""
    if link.owner is not None and consultant_serves(link.owner, project_id):
        return link.owner, Assignment.Kind.RETURNING
    return next_on_duty(project_id, at), Assignment.Kind.ROTATION


def visit_get(*, viewer: Any, pk: Any) -> Visit:
    """A visit in the viewer's scope — or one they registered themselves in a project they
    work in (a consultant at the desk sees the answer for a visitor given to a colleague)."""
    qs = Visit.objects.select_related("customer", "project", "consultant", "agent")
    try:
        return get_scoped(qs, viewer, pk=pk)
    except NotFound:
        visit = qs.filter(pk=pk, registered_by_id=getattr(viewer, "pk", None)).first()
        if visit is None or not scope_of(viewer).sees_project(visit.project_id):
            raise
        return visit


def visits_for_customer(*, viewer: Any, customer: Customer) -> list[Visit]:
    scope = scope_of(viewer)
    qs = Visit.objects.filter(customer=customer).select_related("project", "consultant", "agent")
    if not scope.all_projects:
        qs = qs.filter(project_id__in=scope.project_ids)
    return list(qs[:50])
