"""Reads of channels, scoped to the viewer: an agent sees only their own reports, a
channel manager the reports of their projects."""

from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from homeclub.org.models import OrgNode
from homeclub.org.scoping import get_scoped, scoped

from .models import Agency, Agent, Report, ReportStatus


def report_list(
    *,
    viewer: Any,
    project_id: int | None = None,
    status: str = "",
    agency_id: int | None = None,
) -> QuerySet[Report]:
    qs = scoped(Report.objects.all(), viewer)
    if project_id:
        qs = qs.filter(project_id=project_id)
    if status and status in ReportStatus.values:
        qs = qs.filter(status=status)
    if agency_id:
        qs = qs.filter(agency_id=agency_id)
    return qs.select_related("project", "agency", "agent").order_by("-created_at", "-id")


def report_get(*, viewer: Any, pk: Any) -> Report:
    """One report the viewer may see, else NotFound (someone else's report included)."""
    return get_scoped(Report.objects.select_related("project", "agency", "agent"), viewer, pk=pk)


def agent_for(user: Any) -> Agent | None:
    if not getattr(user, "pk", None):
        return None
    return Agent.objects.select_related("agency", "user").filter(user_id=user.pk).first()


def agent_projects(agent: Agent) -> QuerySet[OrgNode]:
    """Projects the agent may report to today: those their agency's contracts cover, or
    every active project for a crowd agent."""
    qs = OrgNode.objects.filter(kind=OrgNode.Kind.PROJECT, is_active=True)
    if agent.agency_id is None:
        return qs.order_by("path")
    day = timezone.localdate()
    return (
        qs.filter(
            Q(agency_contracts__ends_on__isnull=True) | Q(agency_contracts__ends_on__gte=day),
            agency_contracts__agency_id=agent.agency_id,
            agency_contracts__agency__active=True,
            agency_contracts__active=True,
            agency_contracts__starts_on__lte=day,
        )
        .distinct()
        .order_by("path")
    )


def agency_list(*, viewer: Any) -> QuerySet[Agency]:
    return scoped(Agency.objects.all(), viewer).order_by("name")
