"""Writes to the org tree and staff accounts."""

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import ValidationFailed
from homeclub.common.models import AuditEvent

from .models import BusinessUnit, OrgNode, User
from .roles import EXTERNAL_ROLES, Role

_PARENT_KIND = {
    OrgNode.Kind.GROUP: None,
    OrgNode.Kind.CITY: OrgNode.Kind.GROUP,
    OrgNode.Kind.PROJECT: OrgNode.Kind.CITY,
}


def org_node_create(
    *,
    actor: Any,
    kind: str,
    code: str,
    name: str,
    parent: OrgNode | None = None,
    city_name: str = "",
    address: str = "",
) -> OrgNode:
    """A group has no parent; a city sits under a group; a project under a city."""
    expected = _PARENT_KIND[OrgNode.Kind(kind)]
    if (parent is None) != (expected is None) or (parent is not None and parent.kind != expected):
        raise ValidationFailed(
            _("A group has no parent, a city belongs to a group, a project to a city."),
            fields={"parent": [str(_("Wrong parent for this kind of node."))]},
        )
    if OrgNode.objects.filter(code=code).exists():
        raise ValidationFailed(fields={"code": [str(_("This code is already used."))]})
    path = f"{parent.path if parent else '/'}{code}/"
    with transaction.atomic():
        node = OrgNode.objects.create(
            kind=kind,
            code=code,
            name=name,
            parent=parent,
            path=path,
            city_name=city_name or (parent.city_name if parent else ""),
            address=address,
        )
        audit_log(
            actor=actor,
            action=AuditEvent.Action.CREATE,
            target=node,
            changes={"kind": kind, "code": code, "name": name},
        )
    return node


def business_unit_create(
    *, actor: Any, group: OrgNode, kind: str, code: str, name: str
) -> BusinessUnit:
    if group.kind != OrgNode.Kind.GROUP:
        raise ValidationFailed(fields={"group": [str(_("Business units belong to the group."))]})
    with transaction.atomic():
        unit = BusinessUnit.objects.create(group=group, kind=kind, code=code, name=name)
        audit_log(actor=actor, action=AuditEvent.Action.CREATE, target=unit, changes={"kind": kind})
    return unit


def user_create(
    *,
    actor: Any,
    username: str,
    password: str | None,
    role: str,
    name: str = "",
    mobile: str = "",
    email: str = "",
    org_nodes: Iterable[OrgNode] = (),
) -> User:
    """Internal staff must hang on at least one org node; external users on none."""
    nodes = list(org_nodes)
    if role not in Role.values:
        raise ValidationFailed(fields={"role": [str(_("Unknown role."))]})
    if role in EXTERNAL_ROLES and nodes:
        raise ValidationFailed(
            fields={"org_nodes": [str(_("External users are not attached to org nodes."))]}
        )
    if role not in EXTERNAL_ROLES and role != Role.ADMIN and not nodes:
        raise ValidationFailed(
            fields={"org_nodes": [str(_("Staff must be attached to at least one org node."))]}
        )
    if User.objects.filter(username=username).exists():
        raise ValidationFailed(fields={"username": [str(_("This username is taken."))]})
    with transaction.atomic():
        user = User(
            username=username,
            role=role,
            name=name,
            mobile=mobile,
            email=email,
            is_staff=role == Role.ADMIN,
            is_superuser=role == Role.ADMIN,
        )
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
        if nodes:
            user.org_nodes.set(nodes)
        audit_log(
            actor=actor,
            action=AuditEvent.Action.CREATE,
            target=user,
            changes={"role": role, "org_nodes": [n.code for n in nodes]},
        )
    return user
