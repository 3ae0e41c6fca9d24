"""Sales-control board (销控表): a page and the live fragment htmx polls."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render

from homeclub.common.http import AuthedRequest
from homeclub.org.scoping import projects_for

from .models import UnitStatus
from .selectors import board_snapshot, project_for


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
