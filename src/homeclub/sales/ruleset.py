"""A project's sales rule set: the version in force at a moment, and new versions."""

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from homeclub.common.audit import audit_log, snapshot
from homeclub.common.errors import Busy, Forbidden, ValidationFailed
from homeclub.org.models import OrgNode
from homeclub.org.roles import Role
from homeclub.org.scoping import ensure_can_write, ensure_project_in_scope, scope_of

from .models import SalesRuleSet
from .rules import Rules

RULE_FIELDS = (
    "report_window_hours",
    "visit_protection_days",
    "developer_protection_days",
    "tie_margin_minutes",
    "visit_is_king",
    "require_accompany",
    "allow_masked_reports",
    "pool_after_days",
    "pool_warning_days",
    "pool_claim_daily_limit",
)
RULE_EDITORS = frozenset({Role.ADMIN, Role.SALES_MANAGER, Role.CHANNEL_MANAGER})


def ruleset_current(project_id: int, at: dt.datetime | None = None) -> SalesRuleSet:
    """The version in force at ``at`` (default now). A project that never set rules gets
    version 1 with the defaults, created once (valid from the epoch, so it covers the past)."""
    at = at or timezone.now()
    found = (
        SalesRuleSet.objects.filter(project_id=project_id, valid_from__lte=at)
        .order_by("-valid_from", "-version")
        .first()
    )
    if found is not None:
        return found
    if SalesRuleSet.objects.filter(project_id=project_id).exists():
        # Only future versions exist: the earliest one governs the past too.
        return SalesRuleSet.objects.filter(project_id=project_id).order_by("version").first()  # type: ignore[return-value]
    try:
        with transaction.atomic():
            return SalesRuleSet.objects.create(
                project_id=project_id,
                version=1,
                valid_from=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
                note="defaults",
            )
    except IntegrityError:
        return SalesRuleSet.objects.get(project_id=project_id, version=1)


def as_rules(rs: SalesRuleSet) -> Rules:
    return Rules(
        version=rs.version,
        report_window=dt.timedelta(hours=rs.report_window_hours),
        visit_protection=dt.timedelta(days=rs.visit_protection_days),
        developer_protection=dt.timedelta(days=rs.developer_protection_days),
        tie_margin=dt.timedelta(minutes=rs.tie_margin_minutes),
        visit_is_king=rs.visit_is_king,
        require_accompany=rs.require_accompany,
    )


def ruleset_create(
    *,
    actor: Any,
    project: OrgNode,
    valid_from: dt.datetime | None = None,
    note: str = "",
    **values: Any,
) -> SalesRuleSet:
    """A new version: unspecified values are copied from the version in force. Past
    decisions keep the version they recorded."""
    ensure_can_write(actor)
    ensure_project_in_scope(actor, project.pk)
    if scope_of(actor).role not in RULE_EDITORS:
        raise Forbidden(_("Only a sales or channel manager may change the rules."))
    unknown = set(values) - set(RULE_FIELDS)
    if unknown:
        raise ValidationFailed(fields={k: [_("Unknown field.")] for k in sorted(unknown)})
    errors: dict[str, list[str]] = {}
    for key, value in values.items():
        if key in ("visit_is_king", "require_accompany", "allow_masked_reports"):
            if not isinstance(value, bool):
                errors[key] = [_("Choose yes or no.")]
        elif not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 3650:
            errors[key] = [_("Enter a whole number from 0 to 3650.")]
    if errors:
        raise ValidationFailed(fields=errors)
    now = timezone.now()
    when = valid_from or now
    base = ruleset_current(project.pk, when)
    data = {f: getattr(base, f) for f in RULE_FIELDS} | values
    for _attempt in range(3):
        try:
            # Not durable: the admin's add form calls this inside its own transaction.
            with transaction.atomic():
                top = SalesRuleSet.objects.filter(project=project).aggregate(m=Max("version"))["m"]
                rs = SalesRuleSet.objects.create(
                    project=project,
                    version=(top or 0) + 1,
                    valid_from=when,
                    note=note[:200],
                    created_by=actor,
                    **data,
                )
                audit_log(
                    actor=actor,
                    action="sales.rules.create",
                    target=rs,
                    changes=snapshot(rs, ("version", "valid_from", *RULE_FIELDS)),
                )
            return rs
        except IntegrityError:
            continue  # a concurrent editor took this version number
    raise Busy()
