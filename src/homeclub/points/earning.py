"""The earning rules engine: which rule version pays for an act, how much, within caps.

``points_earn`` picks the version of the rule in force for the trigger and scope at the
act's time, computes the points with the pure formula (``earning_rules``), passes them
through the member's per-day and per-month caps and awards them with ``points_award``,
which records ``code@vN`` on the entry. Invariants:

- caps are never exceeded, even by concurrent acts: the member's day and month counter
  rows for the rule are locked (pk order) and moved in the transaction that records the
  decision (``EarningGrant``), so a second act waits and sees the first one's points;
- one decision per source: ``EarningGrant`` is unique per (source_type, source_id), so a
  retry reuses it (it never counts against the caps twice) and the ledger's own unique
  key makes the award itself happen once;
- the decision and the award are two transactions (the ledger owns its own durable
  one). If the award is refused, the decision is undone (counters given back); if the
  process dies in between, the next retry of the same source finishes the award.
  Either way a cap is never exceeded — at worst briefly under-used.
"""

import datetime as dt
import inspect
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.club.models import Member
from homeclub.common.audit import audit_log
from homeclub.common.errors import Conflict, DomainError, NotFound, ValidationFailed
from homeclub.common.locking import lock_rows
from homeclub.org.models import BusinessUnit, OrgNode
from homeclub.org.roles import Role
from homeclub.org.scoping import ensure_can_write, scope_of

from . import earning_rules as er
from .models import EarningCounter, EarningGrant, EarningRule, Entry
from .selectors import earn_rate_at
from .services import points_award

RULE_EDITOR_ROLES = frozenset({Role.ADMIN, Role.CLUB_OPERATOR})
RULE_READER_ROLES = frozenset({Role.ADMIN, Role.CLUB_OPERATOR, Role.ANALYST})

# The ledger multiplies every award by the member's tier multiplier. A rule that must not
# be multiplied needs ``points_award(apply_tier_multiplier=False)``; passed only once the
# ledger accepts that flag (see the report of issue 7, item 4).
_AWARD_TAKES_TIER_FLAG = "apply_tier_multiplier" in inspect.signature(points_award).parameters

Outcome = EarningGrant.Outcome


@dataclass(frozen=True)
class EarnResult:
    """What ``points_earn`` did: ``entry`` is None when no points were awarded, and
    ``message`` then says why (formula gave zero, or the caps are used up)."""

    outcome: str
    points: int
    wanted: int
    rule: EarningRule
    entry: Entry | None
    message: str

    @property
    def rule_version(self) -> str:
        return self.rule.label


# --- rules: read and version ----------------------------------------------------------------


def ensure_rule_reader(viewer: Any) -> None:
    if scope_of(viewer).role not in RULE_READER_ROLES:
        raise NotFound()


def ensure_rule_editor(viewer: Any) -> None:
    ensure_rule_reader(viewer)
    if scope_of(viewer).role not in RULE_EDITOR_ROLES:
        raise NotFound()
    ensure_can_write(viewer)


def rule_list(*, viewer: Any, trigger: str | None = None) -> QuerySet[EarningRule]:
    """Every version of every rule, newest version first per code, with its scope and
    how many ledger entries it made (``entry_count``)."""
    ensure_rule_reader(viewer)
    qs = EarningRule.objects.select_related("business_unit").prefetch_related(
        "projects", "business_units"
    )
    if trigger:
        qs = qs.filter(trigger=trigger)
    return qs.order_by("trigger", "code", "-version")


def entry_counts(rules: list[EarningRule]) -> dict[str, int]:
    """``{"code@vN": entries}`` for the given versions, in one query."""
    labels = [r.label for r in rules]
    rows = (
        Entry.objects.filter(rule_version__in=labels)
        .order_by()
        .values("rule_version")
        .annotate(n=Count("id"))
    )
    return {row["rule_version"]: row["n"] for row in rows}


def _int_or_none(value: Any, field: str, fields: dict[str, list[str]]) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        fields[field] = [gettext("Enter a whole number, zero or more.")]
        return None
    return value


def rule_create(
    *,
    actor: Any,
    code: str,
    name: str,
    trigger: str,
    business_unit: BusinessUnit,
    valid_from: dt.datetime,
    formula: str = EarningRule.Formula.FIXED,
    fixed_points: int = 0,
    rate_per_yuan: Decimal | str | int = Decimal("0"),
    unit: str = EarningRule.Unit.CLUB,
    apply_tier_multiplier: bool = True,
    cap_per_day: int | None = None,
    cap_per_month: int | None = None,
    valid_until: dt.datetime | None = None,
    is_active: bool = True,
    pending: bool = False,
    projects: list[OrgNode] | None = None,
    business_units: list[BusinessUnit] | None = None,
    note: str = "",
) -> EarningRule:
    """Add the next version of rule ``code`` (the first one if the code is new).

    Versions are never edited; a new version must start after the previous one, so the
    version in force at any time is the highest one that has started."""
    if actor is not None:
        ensure_rule_editor(actor)
    fields: dict[str, list[str]] = {}
    code = (code or "").strip().lower()
    if not code or len(code) > 32 or not code.replace("-", "").replace("_", "").isalnum():
        fields["code"] = [gettext("Enter a code of 1 to 32 letters, digits, - or _.")]
    name = (name or "").strip()
    if not name:
        fields["name"] = [gettext("This field is required.")]
    if trigger not in EarningRule.Trigger.values:
        fields["trigger"] = [gettext("Choose a valid trigger.")]
    if formula not in EarningRule.Formula.values:
        fields["formula"] = [gettext("Choose a valid formula.")]
    if unit not in EarningRule.Unit.values:
        fields["unit"] = [gettext("Choose a valid unit.")]
    fixed = _int_or_none(fixed_points, "fixed_points", fields) or 0
    day_cap = _int_or_none(cap_per_day, "cap_per_day", fields)
    month_cap = _int_or_none(cap_per_month, "cap_per_month", fields)
    try:
        rate = Decimal(str(rate_per_yuan))
        if not rate.is_finite() or rate < 0 or rate >= Decimal("1e9"):
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        fields["rate_per_yuan"] = [gettext("Enter a number, zero or more.")]
        rate = Decimal("0")
    if formula == EarningRule.Formula.FIXED and is_active and fixed <= 0:
        fields["fixed_points"] = [gettext("A fixed formula needs points above zero.")]
    if formula == EarningRule.Formula.PER_YUAN and is_active and rate <= 0:
        fields["rate_per_yuan"] = [gettext("A per-yuan formula needs a rate above zero.")]
    for label, value in (("valid_from", valid_from), ("valid_until", valid_until)):
        if value is not None and timezone.is_naive(value):
            fields[label] = [gettext("Enter a date and time with a time zone.")]
    if (
        valid_until is not None
        and "valid_until" not in fields
        and "valid_from" not in fields
        and valid_until <= valid_from
    ):
        fields["valid_until"] = [gettext("The end must be after the start.")]
    if fields:
        raise ValidationFailed(fields=fields)
    with transaction.atomic(durable=True):
        previous = (
            EarningRule.objects.filter(code=code).order_by("-version").only("version", "valid_from")
        ).first()
        if previous is not None and valid_from <= previous.valid_from:
            raise ValidationFailed(
                fields={
                    "valid_from": [
                        gettext("A new version must start after version %(version)s.")
                        % {"version": previous.version}
                    ]
                }
            )
        try:
            with transaction.atomic():
                rule = EarningRule.objects.create(
                    code=code,
                    version=(previous.version + 1) if previous else 1,
                    name=name[:100],
                    trigger=trigger,
                    formula=formula,
                    fixed_points=fixed,
                    rate_per_yuan=rate,
                    unit=unit,
                    apply_tier_multiplier=apply_tier_multiplier,
                    cap_per_day=day_cap,
                    cap_per_month=month_cap,
                    valid_from=valid_from,
                    valid_until=valid_until,
                    is_active=is_active,
                    pending=pending,
                    business_unit=business_unit,
                    note=(note or "")[:200],
                    created_by=actor if getattr(actor, "pk", None) else None,
                )
        except IntegrityError as exc:
            raise Conflict(
                _("Someone added a version of this rule at the same time; reload and retry."),
                code="rule_version_taken",
            ) from exc
        if projects:
            rule.projects.set(projects)
        if business_units:
            rule.business_units.set(business_units)
        audit_log(
            actor=actor if getattr(actor, "pk", None) else None,
            action="points_rule_create",
            target=rule,
            changes={
                "rule_version": rule.label,
                "trigger": trigger,
                "formula": formula,
                "fixed_points": fixed,
                "rate_per_yuan": str(rate),
                "caps": [day_cap, month_cap],
                "valid_from": valid_from.isoformat(),
            },
        )
    return rule


def rule_in_force(
    *,
    trigger: str,
    at: dt.datetime,
    project_id: int | None = None,
    business_unit_id: int | None = None,
) -> EarningRule | None:
    """The rule version that pays for ``trigger`` at ``at`` for this project and business
    unit: per code the highest version started by ``at``; among codes whose version is
    active, valid and in scope, the narrowest scope wins, then the latest start."""
    latest: dict[str, EarningRule] = {}
    for rule in (
        EarningRule.objects.filter(trigger=trigger, valid_from__lte=at)
        .select_related("business_unit")
        .prefetch_related("projects", "business_units")
        .order_by("code", "-version")
    ):
        latest.setdefault(rule.code, rule)
    best: tuple[int, dt.datetime, int] | None = None
    chosen: EarningRule | None = None
    for rule in latest.values():
        if not rule.is_active or (rule.valid_until is not None and at >= rule.valid_until):
            continue
        project_ids = {p.pk for p in rule.projects.all()}
        unit_ids = {u.pk for u in rule.business_units.all()}
        if project_ids and project_id not in project_ids:
            continue
        if unit_ids and business_unit_id not in unit_ids:
            continue
        key = (
            er.specificity(has_projects=bool(project_ids), has_units=bool(unit_ids)),
            rule.valid_from,
            rule.pk,
        )
        if best is None or key > best:
            best, chosen = key, rule
    return chosen


# --- earning --------------------------------------------------------------------------------


def _result(grant: EarningGrant, rule: EarningRule) -> EarnResult:
    if grant.outcome == Outcome.ZERO:
        message = gettext("The rule's formula gives no points for this act.")
    elif grant.outcome == Outcome.CAPPED:
        message = gettext("The member has reached this rule's cap for the day or the month.")
    elif grant.points < grant.wanted:
        message = gettext("Awarded up to the rule's cap.")
    else:
        message = ""
    return EarnResult(
        outcome=grant.outcome,
        points=grant.points,
        wanted=grant.wanted,
        rule=rule,
        entry=grant.entry,
        message=message,
    )


def _counter_keys(code: str, day: dt.date, month: dt.date) -> list[tuple[str, dt.date]]:
    return [("d", day), ("m", month)]


def _reserve(
    *, member: Member, rule: EarningRule, wanted: int, day: dt.date, month: dt.date
) -> int:
    """Points the caps let through, counted in the member's counters (open transaction)."""
    if rule.cap_per_day is None and rule.cap_per_month is None:
        return wanted
    keys = _counter_keys(rule.code, day, month)
    EarningCounter.objects.bulk_create(
        [
            EarningCounter(member=member, rule_code=rule.code, period=p, period_start=s)
            for p, s in keys
        ],
        ignore_conflicts=True,
    )
    locked = lock_rows(
        EarningCounter.objects.filter(member=member, rule_code=rule.code).filter(
            period_start__in=[day, month]
        )
    )
    used = {(c.period, c.period_start): c for c in locked}
    day_row, month_row = used[("d", day)], used[("m", month)]
    allowed = er.cap_allowed(
        wanted=wanted,
        used_day=day_row.points,
        cap_day=rule.cap_per_day,
        used_month=month_row.points,
        cap_month=rule.cap_per_month,
    )
    if allowed:
        EarningCounter.objects.filter(pk__in=[day_row.pk, month_row.pk]).update(
            points=F("points") + allowed
        )
    return allowed


def _release(grant: EarningGrant, rule: EarningRule) -> None:
    """Undo a decision whose award the ledger refused: give the points back to the caps."""
    with transaction.atomic(durable=True):
        gone, _n = EarningGrant.objects.filter(pk=grant.pk, entry__isnull=True).delete()
        if (
            gone
            and grant.points
            and (rule.cap_per_day is not None or rule.cap_per_month is not None)
        ):
            month = grant.day.replace(day=1)
            EarningCounter.objects.filter(
                member_id=grant.member_id, rule_code=rule.code, period="d", period_start=grant.day
            ).update(points=F("points") - grant.points)
            EarningCounter.objects.filter(
                member_id=grant.member_id, rule_code=rule.code, period="m", period_start=month
            ).update(points=F("points") - grant.points)


def points_earn(
    *,
    actor: Any,
    member: Member,
    trigger: str,
    source_type: str,
    source_id: Any,
    amount_yuan: Decimal | int | str | None = None,
    project: OrgNode | None = None,
    business_unit: BusinessUnit | None = None,
    at: dt.datetime | None = None,
) -> EarnResult:
    """Award the points the rule in force gives for one act (see the module docstring
    for the invariants). ``project`` and ``business_unit`` select the rule by scope; the
    points are counted in the rule's business unit. Idempotent per source."""
    if actor is not None:
        ensure_can_write(actor)
    st = (source_type or "").strip()
    sid = str(source_id if source_id is not None else "").strip()
    fields: dict[str, list[str]] = {}
    if not st or len(st) > 40:
        fields["source_type"] = [gettext("Enter a source type of 1 to 40 characters.")]
    if not sid or len(sid) > 64:
        fields["source_id"] = [gettext("Enter a source id of 1 to 64 characters.")]
    if trigger not in EarningRule.Trigger.values:
        fields["trigger"] = [gettext("Choose a valid trigger.")]
    yuan: Decimal | None = None
    if amount_yuan is not None:
        try:
            if isinstance(amount_yuan, float | bool):
                raise InvalidOperation
            yuan = Decimal(str(amount_yuan))
            if not yuan.is_finite() or yuan < 0 or yuan >= Decimal("1e10"):
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            fields["amount_yuan"] = [gettext("Enter an amount in yuan, zero or more.")]
    if at is not None and timezone.is_naive(at):
        fields["at"] = [gettext("Enter a date and time with a time zone.")]
    if fields:
        raise ValidationFailed(fields=fields)
    when = at or timezone.now()

    grant = (
        EarningGrant.objects.filter(source_type=st, source_id=sid)
        .select_related("rule", "rule__business_unit", "entry", "rate")
        .first()
    )
    if grant is None:
        rule = rule_in_force(
            trigger=trigger,
            at=when,
            project_id=project.pk if project else None,
            business_unit_id=business_unit.pk if business_unit else None,
        )
        if rule is None:
            raise ValidationFailed(
                _("No earning rule is in force for this act."), code="no_earning_rule"
            )
        amount = er.formula_amount(
            formula=rule.formula,
            fixed_points=rule.fixed_points,
            rate_per_yuan=rule.rate_per_yuan,
            amount_yuan=yuan,
        )
        rate = None
        if rule.unit == EarningRule.Unit.BU:
            rate = earn_rate_at(rule.business_unit, when)
            if rate is None:
                raise ValidationFailed(
                    _("This business unit has no exchange rate for that date."), code="no_rate"
                )
            wanted = er.to_club_points(amount, rate.points_per_unit)
        else:
            wanted = er.whole_points(amount)
        day, month = er.cap_periods(when)
        try:
            with transaction.atomic(durable=True):
                granted = (
                    _reserve(member=member, rule=rule, wanted=wanted, day=day, month=month)
                    if wanted
                    else 0
                )
                outcome = (
                    Outcome.ZERO
                    if wanted == 0
                    else Outcome.CAPPED
                    if granted == 0
                    else Outcome.AWARDED
                )
                grant = EarningGrant.objects.create(
                    source_type=st,
                    source_id=sid,
                    member=member,
                    rule=rule,
                    wanted=wanted,
                    points=granted,
                    outcome=outcome,
                    day=day,
                    rate=rate,
                    bu_units=amount if rate is not None else None,
                )
                if outcome != Outcome.AWARDED:
                    audit_log(
                        actor=actor if getattr(actor, "pk", None) else None,
                        action="points_earn_none",
                        target=grant,
                        changes={"rule_version": rule.label, "outcome": outcome, "wanted": wanted},
                    )
        except IntegrityError:
            # A concurrent call for the same source decided first: use its decision.
            grant = (
                EarningGrant.objects.filter(source_type=st, source_id=sid)
                .select_related("rule", "rule__business_unit", "entry", "rate")
                .first()
            )
            if grant is None:
                raise
    rule = grant.rule
    if grant.member_id != member.pk:
        raise Conflict(
            _("This source was already recorded for another member."), code="source_other_member"
        )
    if grant.outcome != Outcome.AWARDED or grant.entry is not None:
        return _result(grant, rule)

    kwargs: dict[str, Any] = {}
    if _AWARD_TAKES_TIER_FLAG:
        kwargs["apply_tier_multiplier"] = rule.apply_tier_multiplier
    if grant.rate_id is not None:
        # The rate that converted the act (the award may be trimmed by the caps).
        kwargs["rate"] = grant.rate
        kwargs["bu_units"] = grant.bu_units
    try:
        entry = points_award(
            actor=actor,
            member=member,
            business_unit=rule.business_unit,
            source_type=st,
            source_id=sid,
            points=grant.points,
            reason=rule.name,
            pending=rule.pending,
            at=when,
            rule_version=rule.label,
            **kwargs,
        )
    except DomainError:
        _release(grant, rule)
        raise
    EarningGrant.objects.filter(pk=grant.pk, entry__isnull=True).update(entry=entry)
    grant.entry = entry
    return _result(grant, rule)
