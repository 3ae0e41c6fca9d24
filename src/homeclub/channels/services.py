"""Writes of channels: agencies, contracts, agents, reports and their lifecycle.

The invariant of reports — one protecting report per customer and project — is kept by
two partial unique indexes (see ``models``): ``report_create`` expires stale protections
of the same key with conditional UPDATEs, then INSERTs the new protecting row in a
savepoint; a unique violation means another report protects the customer. Every status
change is one conditional UPDATE whose WHERE names the statuses it leaves, so the expiry
job, a visit decision and a deal never overwrite one another.
"""

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from homeclub.common.phones import InvalidPhone, parse_phone_field
from homeclub.customers.models import CustomerPhone, TimelineEvent
from homeclub.customers.timeline import timeline_append
from homeclub.org.models import OrgNode
from homeclub.org.roles import Role
from homeclub.org.scoping import ensure_can_write, ensure_project_in_scope, scope_of, scoped
from homeclub.org.services import user_create
from homeclub.sales.attribution import DEAL_STAGES, NATURAL_KINDS
from homeclub.sales.models import Attribution, SalesRuleSet, StageChange, Visit
from homeclub.sales.ruleset import ruleset_current

from .models import Agency, AgencyContract, Agent, Report, ReportStatus
from .rules import ReportedPhone, parse_reported_phone

RS = ReportStatus
CHANNEL_ADMINS = frozenset({Role.ADMIN, Role.CHANNEL_MANAGER})
# A report's way forward once it brought a visit; a deal may skip steps (visited → signed).
DEAL_ORDER = (RS.VISITED, RS.PLEDGED, RS.SUBSCRIBED, RS.SIGNED, RS.SETTLED)
OPEN = (RS.REPORTED, RS.VISITED)
PREFIX = "channel.report:"
EXPECTED_VISIT_REACH = dt.timedelta(days=366)
# Verdict codes of a valid claim: a valid claim that lost takes the decision's reason.
VERDICT_OK = frozenset({"valid", "winner", "tied"})


# --- rejections: stable codes an agent can act on ---------------------------------------


class ReportRejected(DomainError):
    """A report the rules refused. The refusal is stored (``report_id``) before raising."""

    status = 409
    code = "report_rejected"
    report_id: int | None = None


class AlreadyReported(ReportRejected):
    code = "already_reported"
    default_message = _(
        "This customer is already protected by another report in this project. "
        "The report was not accepted."
    )


class DeveloperProtected(ReportRejected):
    code = "developer_protected"
    default_message = _(
        "This customer is already a customer of this project (a recent visit or a deal), "
        "so a report cannot be accepted."
    )


class AgencyInactive(ReportRejected):
    status = 403
    code = "agency_inactive"
    default_message = _("Your agency has no active contract with this project today.")


class MaskedNotAllowed(ReportRejected):
    status = 422
    code = "masked_not_allowed"
    default_message = _("This project does not accept masked numbers.")

    def __init__(self) -> None:
        super().__init__(fields={"phone": [gettext("This project needs the full mobile number.")]})


REJECTION_LABELS: dict[str, Any] = {
    "already_reported": _("Already protected by another report"),
    "developer_protected": _("Already a customer of this project"),
    "agency_inactive": _("Agency not active in this project"),
    "masked_not_allowed": _("Masked numbers not accepted here"),
    "not_credited": _("Not credited at the visit"),
    "manager_decision": _("Manager's decision"),
    # a valid report that lost carries the reason the other claim won
    "earliest_valid_claim": _("Another claim was earlier"),
    "within_visit_protection": _("Protected by an earlier attribution"),
    "developer_own_customer": _("The developer's own customer"),
}


def reason_label(code: str) -> str:
    """What a reason code means, for the agent's list (the sales office's verdict codes
    included)."""
    if not code:
        return ""
    from homeclub.sales.rules import REASON_LABELS

    label = REJECTION_LABELS.get(code) or REASON_LABELS.get(code)
    return str(label) if label is not None else code


def _phone_invalid() -> ValidationFailed:
    return ValidationFailed(
        _("Enter a valid mobile number, in full or masked like 138****5678."),
        code="phone_invalid",
        fields={
            "phone": [gettext("Enter a valid mobile number, in full or masked like 138****5678.")]
        },
    )


# --- helpers ------------------------------------------------------------------------------


def _ensure_channel_admin(actor: Any) -> None:
    ensure_can_write(actor)
    if scope_of(actor).role not in CHANNEL_ADMINS:
        raise Forbidden(_("Only a channel manager may do this."), code="channel_manager_only")


def _agent_of(actor: Any) -> Agent:
    ensure_can_write(actor)
    if scope_of(actor).role != Role.CHANNEL_AGENT:
        raise Forbidden(_("Only channel agents report customers."), code="not_an_agent")
    agent = Agent.objects.select_related("agency").filter(user_id=actor.pk).first()
    if agent is None:
        raise Forbidden(_("Only channel agents report customers."), code="not_an_agent")
    return agent


def _project(project: OrgNode | int) -> OrgNode:
    pk = project.pk if isinstance(project, OrgNode) else project
    found = OrgNode.objects.filter(pk=pk, kind=OrgNode.Kind.PROJECT, is_active=True).first()
    if found is None:
        raise NotFound(_("Project not found."), code="project_not_found")
    return found


def contract_covers(agency_id: int, project_id: int, day: dt.date) -> bool:
    """Whether an active contract of the agency covers ``day`` in the project."""
    return AgencyContract.objects.filter(
        Q(ends_on__isnull=True) | Q(ends_on__gte=day),
        agency_id=agency_id,
        project_id=project_id,
        active=True,
        agency__active=True,
        starts_on__lte=day,
    ).exists()


def _agency_active(agent: Agent, project_id: int, day: dt.date) -> bool:
    if agent.agency_id is None:
        return True  # a crowd agent reports to any project
    return contract_covers(agent.agency_id, project_id, day)


def developer_protected(e164: str, project_id: int, rs: SalesRuleSet, at: dt.datetime) -> bool:
    """Whether the customer with this number is the developer's own in the project: a
    natural visit or a deal within the developer-protection window before ``at`` — the
    same test the attribution rules apply at the visit, answered now (one query)."""
    since = at - dt.timedelta(days=rs.developer_protection_days)
    customer = OuterRef("customer_id")
    row = (
        CustomerPhone.objects.filter(number=e164)
        .annotate(
            natural=Exists(
                Visit.objects.filter(
                    customer_id=customer,
                    project_id=project_id,
                    kind__in=NATURAL_KINDS,
                    agent__isnull=True,
                    visited_at__gte=since,
                    visited_at__lte=at,
                )
            ),
            deal=Exists(
                StageChange.objects.filter(
                    customer_id=customer,
                    project_id=project_id,
                    to_stage__in=DEAL_STAGES,
                    changed_at__gte=since,
                    changed_at__lte=at,
                )
            ),
        )
        .values("natural", "deal")
        .first()
    )
    return bool(row and (row["natural"] or row["deal"]))


def _expire_stale(project_id: int, key: str, now: dt.datetime, actor: Any) -> None:
    """Protections of this key whose time is up stop protecting, before the INSERT that
    may need their place (the periodic job does the same for everyone)."""
    stale = Report.objects.filter(
        project_id=project_id, phone_key=key, protecting=True, protected_until__lte=now
    ).values_list("pk", flat=True)
    for pk in list(stale):
        _protection_end(pk, now, actor)


def _protection_end(pk: int, now: dt.datetime, actor: Any) -> bool:
    """One report's protection ends: a report still waiting for its visit expires; a
    visited one keeps its status. Conditional UPDATEs: a second caller finds nothing."""
    if Report.objects.filter(
        pk=pk, status=RS.REPORTED, protecting=True, protected_until__lte=now
    ).update(
        status=RS.EXPIRED,
        protecting=False,
        reason="report_window_expired",
        status_changed_at=now,
        updated_at=now,
    ):
        _after_move(pk, RS.REPORTED, RS.EXPIRED, actor, "report_window_expired")
        return True
    if Report.objects.filter(pk=pk, protecting=True, protected_until__lte=now).update(
        protecting=False, updated_at=now
    ):
        audit_log(
            actor=actor,
            action="channels.report.protection_end",
            target_type="channels.report",
            target_id=str(pk),
            changes={"protecting": [True, False]},
        )
        return True
    return False


def _cross_conflict(project_id: int, rp: ReportedPhone, guard: bool, now: dt.datetime) -> bool:
    """A protecting report of the same key that the indexes cannot see, left from a time
    the project's mask rule was different: an unguarded full report when this one guards
    the key, or a masked one when this one does not."""
    cross = Q(key_guard=False) if guard else Q(is_masked=True)
    return (
        Report.objects.filter(
            project_id=project_id, phone_key=rp.key, protecting=True, protected_until__gt=now
        )
        .filter(cross)
        .exists()
    )


def _already_reported(project_id: int, rp: ReportedPhone, actor: Any) -> AlreadyReported:
    """The refusal; an agent who holds the protection themselves is told so (and until
    when) — anyone else learns nothing about whose it is."""
    own = (
        Report.objects.filter(
            project_id=project_id, phone_key=rp.key, protecting=True, agent_id=actor.pk
        )
        .filter(Q(is_masked=True) | Q(key_guard=True) | Q(phone_e164=rp.e164))
        .values_list("protected_until", flat=True)
        .first()
    )
    if own is None:
        return AlreadyReported()
    return AlreadyReported(
        gettext("You already reported this customer; your protection runs until %(until)s.")
        % {"until": timezone.localtime(own).strftime("%Y-%m-%d %H:%M")}
    )


def _label(report: Report) -> str:
    agent = report.agent
    who = getattr(agent, "name", "") or getattr(agent, "username", "")
    agency = report.agency.name if report.agency_id and report.agency else gettext("Crowd agent")
    return f"{agency} · {who}"


def _after_move(
    pk: int, frm: str, to: str, actor: Any, reason: str = "", report: Report | None = None
) -> None:
    """Audit row, and a timeline entry once the report is matched to a customer (never
    with the phone in it)."""
    audit_log(
        actor=actor,
        action=f"channels.report.{to}",
        target_type="channels.report",
        target_id=str(pk),
        changes={"status": [frm, to], "reason": reason},
    )
    if report is None:
        report = (
            Report.objects.select_related("agent", "agency", "project")
            .filter(pk=pk, customer__isnull=False)
            .first()
        )
    if report is None or report.customer_id is None:
        return
    summary = gettext("Channel report by %(who)s at %(project)s: %(status)s") % {
        "who": _label(report),
        "project": report.project.name,
        "status": RS(to).label,
    }
    timeline_append(
        customer=report.customer_id,
        kind=TimelineEvent.Kind.OTHER,
        occurred_at=timezone.now(),
        summary=summary,
        actor=actor,
        source="channels",
        data={"report": pk, "status": to, "reason": reason},
    )


# --- agencies, contracts, agents ----------------------------------------------------------


def agency_create(
    *,
    actor: Any,
    name: str,
    licence_no: str = "",
    contact_name: str = "",
    contact_phone: str = "",
    active: bool = True,
) -> Agency:
    """A new agency; its name is unique (a constraint, not a check)."""
    _ensure_channel_admin(actor)
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed(fields={"name": [gettext("Enter a name of up to 100 characters.")]})
    try:
        with transaction.atomic(durable=True):
            agency = Agency.objects.create(
                name=name,
                licence_no=licence_no.strip()[:40],
                contact_name=contact_name.strip()[:60],
                contact_phone=contact_phone.strip()[:20],
                active=active,
            )
            audit_log(
                actor=actor,
                action="channels.agency.create",
                target=agency,
                changes={"name": name, "active": active},
            )
    except IntegrityError as exc:
        raise ValidationFailed(
            fields={"name": [gettext("An agency with this name already exists.")]}
        ) from exc
    return agency


def agency_contract_create(
    *,
    actor: Any,
    agency: Agency,
    project: OrgNode,
    starts_on: dt.date,
    ends_on: dt.date | None = None,
    note: str = "",
) -> AgencyContract:
    """An agency may report to ``project`` from ``starts_on`` to ``ends_on`` (inclusive)."""
    _ensure_channel_admin(actor)
    ensure_project_in_scope(actor, project.pk)
    if project.kind != OrgNode.Kind.PROJECT:
        raise ValidationFailed(fields={"project": [gettext("Choose a project.")]})
    if ends_on is not None and ends_on < starts_on:
        raise ValidationFailed(
            fields={"ends_on": [gettext("The end date cannot be before the start date.")]}
        )
    with transaction.atomic(durable=True):
        contract = AgencyContract.objects.create(
            agency=agency, project=project, starts_on=starts_on, ends_on=ends_on, note=note[:200]
        )
        audit_log(
            actor=actor,
            action="channels.contract.create",
            target=contract,
            changes={
                "agency": agency.pk,
                "project": project.pk,
                "starts_on": starts_on,
                "ends_on": ends_on,
            },
        )
    return contract


def agent_create(
    *,
    actor: Any,
    username: str,
    name: str,
    mobile: str,
    agency: Agency | None = None,
    password: str | None = None,
) -> Agent:
    """An external ``channel_agent`` user and their profile; without an agency a crowd
    agent (全民经纪人). One agent per mobile (a unique constraint)."""
    _ensure_channel_admin(actor)
    if agency is not None and not scoped(Agency.objects.filter(pk=agency.pk), actor).exists():
        raise NotFound(_("Agency not found."), code="agency_not_found")
    phone = parse_phone_field(mobile, "mobile", mobile_only=True)
    name = (name or "").strip()[:60]
    if not name:
        raise ValidationFailed(fields={"name": [gettext("Enter the agent's name.")]})
    try:
        with transaction.atomic(durable=True):
            user = user_create(
                actor=actor,
                username=username,
                password=password,
                role=Role.CHANNEL_AGENT,
                name=name,
                mobile=phone.national,
            )
            agent = Agent.objects.create(
                user=user, agency=agency, is_crowd=agency is None, mobile=phone.e164
            )
            audit_log(
                actor=actor,
                action="channels.agent.create",
                target=agent,
                changes={
                    "user": user.pk,
                    "agency": getattr(agency, "pk", None),
                    "mobile": phone.e164,
                },
            )
    except IntegrityError as exc:
        raise ValidationFailed(
            fields={"mobile": [gettext("An agent with this mobile number already exists.")]}
        ) from exc
    return agent


def agent_profile_create(
    *, actor: Any, user: Any, mobile: str, agency: Agency | None = None
) -> Agent:
    """The agent profile of an existing ``channel_agent`` user (an account made through
    the org services, e.g. the demo's ``agent`` login)."""
    _ensure_channel_admin(actor)
    if user.role != Role.CHANNEL_AGENT:
        raise ValidationFailed(
            fields={"user": [gettext("This user is not an active channel agent.")]}
        )
    phone = parse_phone_field(mobile, "mobile", mobile_only=True)
    try:
        with transaction.atomic(durable=True):
            agent = Agent.objects.create(
                user=user, agency=agency, is_crowd=agency is None, mobile=phone.e164
            )
            audit_log(
                actor=actor,
                action="channels.agent.create",
                target=agent,
                changes={"user": user.pk, "agency": getattr(agency, "pk", None)},
            )
    except IntegrityError as exc:
        raise ValidationFailed(
            fields={"mobile": [gettext("An agent with this mobile number already exists.")]}
        ) from exc
    return agent


# --- reports ------------------------------------------------------------------------------


def report_create(
    *,
    actor: Any,
    project: OrgNode | int,
    customer_name: str,
    phone: str,
    expected_visit_at: dt.datetime | None = None,
    note: str = "",
) -> Report:
    """An agent reports a customer. The answer is immediate: the accepted report (with
    ``protected_until``), or a :class:`ReportRejected` whose code says why
    (``already_reported``, ``developer_protected``, ``agency_inactive``,
    ``masked_not_allowed``) — the refusal is stored as a ``rejected`` row first. An invalid
    phone (``phone_invalid``) or name is a plain validation error and is not stored.

    Keeps: at most one protecting report per customer key and project, decided by the
    unique indexes under concurrency (50 agents at once → one accepted)."""
    agent = _agent_of(actor)
    proj = _project(project)
    customer_name = (customer_name or "").strip()
    errors: dict[str, list[str]] = {}
    if not customer_name or len(customer_name) > 60:
        errors["customer_name"] = [gettext("Enter the customer's name (up to 60 characters).")]
    now = timezone.now()
    if expected_visit_at is not None and (
        timezone.is_naive(expected_visit_at)
        or not now - dt.timedelta(days=1) <= expected_visit_at <= now + EXPECTED_VISIT_REACH
    ):
        errors["expected_visit_at"] = [gettext("Enter a time within the coming year.")]
    try:
        rp = parse_reported_phone(phone)
    except InvalidPhone as exc:
        invalid = _phone_invalid()
        if errors:
            invalid.fields.update(errors)
        raise invalid from exc
    if errors:
        raise ValidationFailed(fields=errors)
    rs = ruleset_current(proj.pk, now)
    rejection: ReportRejected | None = None
    if rp.masked and not rs.allow_masked_reports:
        rejection = MaskedNotAllowed()
    elif not _agency_active(agent, proj.pk, timezone.localdate(now)):
        rejection = AgencyInactive()
    elif not rp.masked and developer_protected(rp.e164, proj.pk, rs, now):
        rejection = DeveloperProtected()
    guard = rp.masked or rs.allow_masked_reports
    values: dict[str, Any] = {
        "project": proj,
        "agent": actor,
        "agency_id": agent.agency_id,
        "customer_name": customer_name,
        "phone_e164": rp.e164,
        "phone_key": rp.key,
        "is_masked": rp.masked,
        "key_guard": guard,
        "reported_at": now,
        "expected_visit_at": expected_visit_at,
        "note": (note or "").strip()[:300],
        "rule_set": rs,
        "rule_version": rs.version,
        "status_changed_at": now,
    }
    with transaction.atomic(durable=True):
        report: Report | None = None
        if rejection is None:
            _expire_stale(proj.pk, rp.key, now, actor)
            if _cross_conflict(proj.pk, rp, guard, now):
                rejection = _already_reported(proj.pk, rp, actor)
            else:
                try:
                    with transaction.atomic():
                        report = Report.objects.create(
                            **values,
                            status=RS.REPORTED,
                            protecting=True,
                            protected_until=now + dt.timedelta(hours=rs.report_window_hours),
                        )
                except IntegrityError:
                    rejection = _already_reported(proj.pk, rp, actor)
        if report is None:
            assert rejection is not None
            report = Report.objects.create(
                **values, status=RS.REJECTED, reason=rejection.code, protecting=False
            )
        audit_log(
            actor=actor,
            action="channels.report.create",
            target=report,
            changes={
                "project": proj.pk,
                "phone": rp.display,
                "status": report.status,
                "reason": report.reason,
                "rule_version": rs.version,
            },
        )
    if rejection is not None:
        rejection.report_id = report.pk
        raise rejection
    return report


def report_advance(*, report: Report, status: str, actor: Any = None) -> Report:
    """A deal moved on (pledged / subscribed / signed) or the commission was settled.
    Forward only along visited → pledged → subscribed → signed → settled (steps may be
    skipped); asking for the status it already has changes nothing. Runs inside the
    caller's transaction when there is one (the deal's)."""
    if status not in DEAL_ORDER[1:]:
        raise ValidationFailed(fields={"status": [gettext("Select a valid choice.")]})
    before = DEAL_ORDER[: DEAL_ORDER.index(RS(status))]
    now = timezone.now()
    with transaction.atomic():
        moved = Report.objects.filter(pk=report.pk, status__in=before).update(
            status=status, status_changed_at=now, updated_at=now
        )
        current = Report.objects.select_related("agent", "agency", "project").get(pk=report.pk)
        if moved:
            _after_move(report.pk, report.status, status, actor, report=current)
        elif current.status != status:
            raise Conflict(
                _("This report cannot move to that status from where it is."),
                code="report_status_conflict",
            )
    return current


def report_for_deal(*, customer_id: int, project_id: int) -> Report | None:
    """The report the customer's current attribution in the project credits, if any."""
    ref = (
        Attribution.objects.filter(
            customer_id=customer_id,
            project_id=project_id,
            is_current=True,
            winner_ref__startswith=PREFIX,
        )
        .values_list("winner_ref", flat=True)
        .first()
    )
    if not ref or not ref[len(PREFIX) :].isdigit():
        return None
    return (
        Report.objects.filter(
            pk=int(ref[len(PREFIX) :]), project_id=project_id, status__in=DEAL_ORDER
        )
        .select_related("agent", "agency", "project")
        .first()
    )


def report_advance_deal(
    *, customer_id: int, project_id: int, status: str, actor: Any = None
) -> Report | None:
    """For the inventory's deal hook: move the credited report forward to ``status`` if
    it is not there or past it yet. Never moves back; None when no report is credited."""
    report = report_for_deal(customer_id=customer_id, project_id=project_id)
    if report is None:
        return None
    if DEAL_ORDER.index(RS(report.status)) >= DEAL_ORDER.index(RS(status)):
        return report
    return report_advance(report=report, status=status, actor=actor)


def reports_expire(*, now: dt.datetime | None = None, batch: int = 500) -> int:
    """The periodic sweep: reports whose protection time is up stop protecting; those
    still waiting for their visit expire. Idempotent (conditional UPDATEs)."""
    now = now or timezone.now()
    ended = 0
    while True:
        ids = list(
            Report.objects.filter(protecting=True, protected_until__lte=now)
            .order_by("protected_until")
            .values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return ended
        with transaction.atomic(durable=True):
            for pk in ids:
                ended += _protection_end(pk, now, None)


def reports_decided(*, visit: Visit, attribution: Attribution) -> list[Report]:
    """The sales office decided ``visit``: the credited report becomes ``visited`` with the
    attribution's protection; the other reports among the candidates lose (``invalid``,
    the verdict's reason) unless they still await a manager's arbitration; every report
    among the candidates is linked to the customer. Runs inside the visit's transaction."""
    refs: dict[int, dict[str, Any]] = {}
    for cand in attribution.candidates or []:
        ref = str(cand.get("ref", ""))
        if ref.startswith(PREFIX) and ref[len(PREFIX) :].isdigit():
            pk = int(ref[len(PREFIX) :])
            previous = refs.get(pk)
            # The same report may appear twice (its own claim and the protection it won).
            if previous is None or (cand.get("valid") and not previous.get("valid")):
                refs[pk] = cand
    winner_pk = None
    if (
        attribution.winner_ref.startswith(PREFIX)
        and attribution.winner_ref[len(PREFIX) :].isdigit()
    ):
        winner_pk = int(attribution.winner_ref[len(PREFIX) :])
        refs.setdefault(winner_pk, {"valid": True, "reasons": []})
    if not refs:
        return []
    now = timezone.now()
    reports = list(
        Report.objects.select_related("agent", "agency", "project").filter(
            pk__in=list(refs), project_id=attribution.project_id
        )
    )
    Report.objects.filter(pk__in=[r.pk for r in reports], customer__isnull=True).update(
        customer_id=attribution.customer_id, updated_at=now
    )
    awaiting = attribution.outcome == Attribution.Outcome.ARBITRATION
    for r in reports:
        r.customer_id = attribution.customer_id
        if r.pk == winner_pk:
            continue
        cand = refs[r.pk]
        if awaiting and cand.get("valid"):
            continue
        reasons = [x for x in cand.get("reasons") or [] if x not in VERDICT_OK]
        reason = (reasons[0] if reasons else (attribution.reasons or ["not_credited"])[0])[:40]
        if Report.objects.filter(pk=r.pk, status__in=OPEN).update(
            status=RS.INVALID,
            reason=reason,
            protecting=False,
            status_changed_at=now,
            updated_at=now,
        ):
            _after_move(r.pk, r.status, RS.INVALID, None, reason, report=r)
            r.status = RS.INVALID
    for r in reports:
        if r.pk == winner_pk:
            _credit(r, visit, attribution, now)
    return reports


def _credit(r: Report, visit: Visit, attribution: Attribution, now: dt.datetime) -> None:
    until = attribution.protected_until
    if r.status in (RS.REPORTED, RS.EXPIRED, RS.INVALID):
        values: dict[str, Any] = {
            "status": RS.VISITED,
            "reason": "",
            "visit_id": visit.pk,
            "visited_at": visit.visited_at,
            "protected_until": until,
            "protecting": until is not None and until > now,
            "status_changed_at": now,
            "updated_at": now,
        }
        statuses = (RS.REPORTED, RS.EXPIRED, RS.INVALID)
        try:
            with transaction.atomic():
                moved = Report.objects.filter(pk=r.pk, status__in=statuses).update(**values)
        except IntegrityError:
            # Another report holds the key now (a different person under the same mask):
            # the credit stands, the index keeps its one protecting row.
            values["protecting"] = False
            moved = Report.objects.filter(pk=r.pk, status__in=statuses).update(**values)
        if moved:
            _after_move(r.pk, r.status, RS.VISITED, None, "", report=r)
        return
    if until is not None and (r.protected_until is None or until > r.protected_until):
        # A returning visit inside the protection it won: the protection runs on.
        try:
            with transaction.atomic():
                Report.objects.filter(pk=r.pk).update(
                    protected_until=until, protecting=until > now, updated_at=now
                )
        except IntegrityError:
            Report.objects.filter(pk=r.pk).update(protected_until=until, updated_at=now)


def reports_erase_personal_data(*, customer_id: int, phones: list[str]) -> int:
    """PIPL erasure of one person: their reports — linked to the customer, or naming one
    of their numbers in full — keep their status and history but lose the name and the
    number (the report becomes a bare masked row that protects nothing). For
    ``customers.privacy.customer_erase`` to call inside its transaction, before it deletes
    the person's phone rows."""
    now = timezone.now()
    match = Q(customer_id=customer_id)
    if phones:
        match |= Q(phone_e164__in=phones)
    return Report.objects.filter(match).update(
        customer_name="—",
        phone_e164="",
        phone_key="",
        is_masked=True,
        key_guard=True,
        protecting=False,
        updated_at=now,
    )
