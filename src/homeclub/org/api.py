from typing import Any

from ninja import Router, Schema

from homeclub.common.http import AuthedRequest

from .scoping import projects_for, scope_of

router = Router(tags=["org"])


class MeOut(Schema):
    id: int
    username: str
    name: str
    role: str
    read_only: bool
    external: bool
    project_ids: list[int]


class ProjectOut(Schema):
    id: int
    code: str
    name: str
    city_name: str
    city_id: int | None


@router.get("/me", response=MeOut)
def me(request: AuthedRequest) -> dict[str, Any]:
    user = request.auth
    scope = scope_of(user)
    return {
        "id": user.pk,
        "username": user.username,
        "name": user.name,
        "role": scope.role,
        "read_only": not scope.can_write,
        "external": scope.external,
        "project_ids": sorted(projects_for(user).values_list("pk", flat=True)),
    }


@router.get("/projects", response=list[ProjectOut])
def projects(request: AuthedRequest) -> list[dict[str, Any]]:
    return [
        {
            "id": p.pk,
            "code": p.code,
            "name": p.name,
            "city_name": p.city_name,
            "city_id": p.parent_id,
        }
        for p in projects_for(request.auth).order_by("path")
    ]
