"""Risk flags of channels (飞单/截客): computed, never stored, each with its evidence (ids,
times, parties) and a severity. A channel manager may mark a flag reviewed (``RiskReview``).

Every kind is one or a few set-based queries over the period and the viewer's projects, so
the page stays fast at a million reports; the index each one rides on:

``same_phone``
    The same mobile reported by several agencies (or crowd agents) in the period. Three
    queries over the period's reports — a range scan of ``created_at`` (its own index, or
    ``report_proj_time`` for one project): full numbers GROUP BY (project, phone_e164)
    HAVING min(party) < max(party), a plain hash aggregate (COUNT DISTINCT would sort);
    the keys of masked reports the same way, on the few keys that have a masked report;
    then the reports of the numbers and keys found. Two full numbers sharing a key are two
    people; masked reports join every number of their key (they cannot be told apart).
    Measured on PostgreSQL with 1,020,000 reports: 30 days of all 10 projects (152k reports
    in the period) ≈ 0.5 s, of one project (15k) ≈ 0.2 s including 500 flags' evidence.
``report_before_visit``
    A report made only minutes (``minutes_before_visit``, default 30) before the customer's
    visit: visits of the period (``visit_proj_time``) joined to the reports of the same
    customer and project (``report_customer``) made in ``[visited_at - minutes,
    visited_at]``. One query.
``after_natural_visit``
    A customer with an earlier natural visit reported afterwards: reports of the period
    rejected or invalid with reason ``developer_protected`` (``report_proj_status``:
    project, status, created_at), the customers of their numbers (``CustomerPhone.number``
    unique index) and those customers' natural visits (``visit_cust_proj``). Three queries;
    the flag names the natural visit that came first.
``override_to_channel``
    A manager overriding or arbitrating attribution toward a channel: ``Attribution`` rows
    of the period with outcome overridden / arbitrated and a channel-report winner
    (``attr_queue``: project, outcome). One query; shows who decided and why.
``conversion_outlier``
    An agency whose visit-to-deal conversion is far from its peers in the project: the
    dashboard's credited-visit and deal aggregates (``dashboard.credited_visits``,
    ``dashboard.deals_in_period``), compared with the median of the agencies that have at
    least ``conversion_min_visits`` visits (and only when at least ``conversion_min_peers``
    agencies do). Flagged when the rate is ``conversion_ratio`` times the median or more, or
    that much less, and at least ``conversion_min_gap`` away from it; the z-score against
    the peers is shown as evidence.
"""

import datetime as dt
import hashlib
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, DateTimeField, ExpressionWrapper, F, Max, Min, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import Forbidden, NotFound
from homeclub.customers.models import CustomerPhone
from homeclub.org.roles import Role
from homeclub.org.scoping import ensure_can_write, ensure_project_in_scope, scope_of
from homeclub.sales.attribution import NATURAL_KINDS
from homeclub.sales.models import Attribution, Visit, VisitKind
from homeclub.sales.rules import CHANNEL_KINDS, ClaimKind

from .dashboard import (
    Period,
    Source,
    credited_visits,
    deals_in_period,
    ensure_viewer,
    period_of,
    projects_in_view,
)
from .models import Agency, Report, ReportStatus
from .models_risk import RiskKind, RiskReview

RS = ReportStatus
RISK_VIEWERS = frozenset({Role.ADMIN, Role.CHANNEL_MANAGER, Role.ANALYST})
RISK_REVIEWERS = frozenset({Role.ADMIN, Role.CHANNEL_MANAGER})


class Severity:
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


SEVERITY_ORDER = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2}
SEVERITY_LABELS = {
    Severity.HIGH: _("High"),
    Severity.MEDIUM: _("Medium"),
    Severity.LOW: _("Low"),
}


@dataclass(frozen=True)
class RiskParams:
    """The thresholds; defaults come from settings (``HOMECLUB_RISK_<NAME>``)."""

    minutes_before_visit: int = 30
    conversion_min_visits: int = 10
    conversion_min_peers: int = 3
    conversion_ratio: float = 2.0
    conversion_min_gap: float = 0.10
    # an agent with this many "reported after a natural visit" flags in the period is high
    repeat_offender: int = 3
    # most flags of one kind computed (the worst and newest first)
    limit: int = 500


def risk_params(**overrides: Any) -> RiskParams:
    base = RiskParams()
    values = {
        name: getattr(settings, f"HOMECLUB_RISK_{name.upper()}", getattr(base, name))
        for name in RiskParams.__dataclass_fields__
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return RiskParams(**values)


@dataclass(frozen=True)
class Evidence:
    ref: str  # "channel.report:12", "sales.visit:3", "sales.attribution:5", "channels.agency:2"
    at: dt.datetime | None
    what: str
    party: str = ""
    detail: str = ""


@dataclass
class RiskFlag:
    kind: str
    key: str
    project_id: int
    project_name: str
    severity: str
    at: dt.datetime
    summary: str
    evidence: list[Evidence]
    metrics: dict[str, Any] = field(default_factory=dict)
    review: RiskReview | None = None

    @property
    def kind_label(self) -> str:
        return str(RiskKind(self.kind).label)

    @property
    def severity_label(self) -> str:
        return str(SEVERITY_LABELS[self.severity])

    @property
    def evidence_refs(self) -> list[str]:
        return sorted({e.ref for e in self.evidence})

    @property
    def new_since_review(self) -> bool:
        if self.review is None:
            return False
        return bool(set(self.evidence_refs) - set(self.review.evidence or []))

    @property
    def reviewed(self) -> bool:
        return self.review is not None and not self.new_since_review


def _party(agency_name: str | None, agent_name: str | None, agent_username: str | None) -> str:
    agency = agency_name or gettext("Crowd agent")
    return f"{agency} · {agent_name or agent_username or '—'}"


def _person(name: str | None, username: str | None) -> str:
    return name or username or "—"


def _digest(*parts: object) -> str:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()[:16]


def _gap(delta: dt.timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 120:
        return ngettext("%(n)s minute", "%(n)s minutes", minutes) % {"n": minutes}
    hours = minutes // 60
    if hours < 48:
        return ngettext("%(n)s hour", "%(n)s hours", hours) % {"n": hours}
    days = hours // 24
    return ngettext("%(n)s day", "%(n)s days", days) % {"n": days}


def _masked(key: str) -> str:
    return f"{key[:3]}****{key[3:]}" if len(key) == 7 else "—"


def _report_what(pk: int, status: str, reason: str) -> str:
    from .services import reason_label

    what = gettext("Report #%(id)s (%(status)s)") % {"id": pk, "status": RS(status).label}
    return f"{what}: {reason_label(reason)}" if reason else what


# --- (a) the same phone reported by several agencies ---------------------------------------


def _same_phone(
    pids: list[int], period: Period, p: RiskParams, names: dict[int, str]
) -> list[RiskFlag]:
    base = Report.objects.filter(
        project_id__in=pids, created_at__gte=period.start, created_at__lt=period.end
    ).exclude(phone_key="")
    # A party is the agency, or the agent themselves when a crowd agent (negated: the two
    # id spaces never meet). "Several parties" is min ≠ max: a plain aggregate the database
    # hashes in one pass, where COUNT(DISTINCT …) would sort the period's reports.
    party = Coalesce(F("agency_id"), F("agent_id") * -1)
    newest = ("-last", "project_id")
    numbers = list(
        base.filter(is_masked=False)
        .values("project_id", "phone_e164")
        .annotate(lo=Min(party), hi=Max(party), last=Max("reported_at"))
        .filter(lo__lt=F("hi"))
        .order_by(*newest, "phone_e164")
        .values_list("phone_e164", flat=True)[: p.limit]
    )
    # masked reports cannot be told apart within their key: the key is the unit there
    keys = list(
        base.filter(phone_key__in=base.filter(is_masked=True).values("phone_key"))
        .values("project_id", "phone_key")
        .annotate(
            masked=Count("pk", filter=Q(is_masked=True)),
            lo=Min(party),
            hi=Max(party),
            last=Max("reported_at"),
        )
        .filter(masked__gte=1, lo__lt=F("hi"))
        .order_by(*newest, "phone_key")
        .values_list("phone_key", flat=True)[: p.limit]
    )
    if not numbers and not keys:
        return []
    rows = (
        base.filter(Q(phone_e164__in=set(numbers)) | Q(phone_key__in=set(keys)))
        .values(
            "pk",
            "project_id",
            "phone_key",
            "phone_e164",
            "is_masked",
            "agency_id",
            "agent_id",
            "agency__name",
            "agent__name",
            "agent__username",
            "reported_at",
            "status",
            "reason",
        )
        .order_by("reported_at", "pk")
    )
    by_key: dict[tuple[int, str], list[dict[str, Any]]] = defaultdict(list)
    for found in rows:
        by_key[(found["project_id"], found["phone_key"])].append(dict(found))
    flags = []
    for (pid, key), reports in by_key.items():
        masked = [r for r in reports if r["is_masked"]]
        by_number: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in reports:
            if not r["is_masked"]:
                by_number[r["phone_e164"]].append(r)
        clusters = (
            [
                (number, sorted(full + masked, key=lambda r: (r["reported_at"], r["pk"])))
                for number, full in by_number.items()
            ]
            if by_number
            else [("", masked)]
        )
        for number, cluster in clusters:
            parties = {r["agency_id"] or f"crowd:{r['agent_id']}" for r in cluster}
            if len(parties) < 2:
                continue
            flags.append(
                RiskFlag(
                    kind=RiskKind.SAME_PHONE,
                    key=f"same_phone:{pid}:{_digest(pid, key, number)}",
                    project_id=pid,
                    project_name=names[pid],
                    severity=Severity.HIGH if len(parties) >= 3 else Severity.MEDIUM,
                    at=cluster[-1]["reported_at"],
                    summary=gettext("%(phone)s reported by %(n)s agencies")
                    % {"phone": _masked(key), "n": len(parties)},
                    evidence=[
                        Evidence(
                            ref=f"channel.report:{r['pk']}",
                            at=r["reported_at"],
                            what=_report_what(r["pk"], r["status"], r["reason"]),
                            party=_party(r["agency__name"], r["agent__name"], r["agent__username"]),
                        )
                        for r in cluster
                    ],
                    metrics={"parties": len(parties), "reports": len(cluster)},
                )
            )
    return flags


# --- (b) a report made minutes before the visit --------------------------------------------


def _report_before_visit(
    pids: list[int], period: Period, p: RiskParams, names: dict[int, str]
) -> list[RiskFlag]:
    window = dt.timedelta(minutes=p.minutes_before_visit)
    rel = "customer__channel_reports"
    rows = (
        Visit.objects.filter(
            project_id__in=pids,
            visited_at__gte=period.start,
            visited_at__lt=period.end,
            **{
                f"{rel}__project_id": F("project_id"),
                f"{rel}__reported_at__lte": F("visited_at"),
                f"{rel}__reported_at__gte": ExpressionWrapper(
                    F("visited_at") - window, output_field=DateTimeField()
                ),
            },
        )
        .values(
            "pk",
            "project_id",
            "visited_at",
            "kind",
            "agent_id",
            "consultant__name",
            "consultant__username",
            report_id=F(f"{rel}__id"),
            reported_at=F(f"{rel}__reported_at"),
            report_agent_id=F(f"{rel}__agent_id"),
            report_status=F(f"{rel}__status"),
            report_reason=F(f"{rel}__reason"),
            agency_name=F(f"{rel}__agency__name"),
            agent_name=F(f"{rel}__agent__name"),
            agent_username=F(f"{rel}__agent__username"),
        )
        .order_by("-visited_at", "-pk")[: p.limit]
    )
    kinds = dict(VisitKind.choices)
    flags = []
    for r in rows:
        gap = r["visited_at"] - r["reported_at"]
        alone = r["agent_id"] is None
        accompanied = r["agent_id"] == r["report_agent_id"]
        severe = alone or gap <= dt.timedelta(minutes=10)
        detail = (
            gettext("came without an agent")
            if alone
            else gettext("accompanied by the reporting agent")
            if accompanied
            else gettext("accompanied by another agent")
        )
        flags.append(
            RiskFlag(
                kind=RiskKind.REPORT_BEFORE_VISIT,
                key=f"report_before_visit:{r['report_id']}:{r['pk']}",
                project_id=r["project_id"],
                project_name=names[r["project_id"]],
                severity=Severity.HIGH if severe else Severity.MEDIUM,
                at=r["visited_at"],
                summary=gettext("Reported %(gap)s before the visit") % {"gap": _gap(gap)},
                evidence=[
                    Evidence(
                        ref=f"channel.report:{r['report_id']}",
                        at=r["reported_at"],
                        what=_report_what(r["report_id"], r["report_status"], r["report_reason"]),
                        party=_party(r["agency_name"], r["agent_name"], r["agent_username"]),
                    ),
                    Evidence(
                        ref=f"sales.visit:{r['pk']}",
                        at=r["visited_at"],
                        what=gettext("Visit #%(id)s (%(kind)s)")
                        % {"id": r["pk"], "kind": kinds.get(r["kind"], r["kind"])},
                        party=gettext("Consultant: %(name)s")
                        % {"name": _person(r["consultant__name"], r["consultant__username"])},
                        detail=detail,
                    ),
                ],
                metrics={"minutes": int(gap.total_seconds() // 60), "alone": alone},
            )
        )
    return flags


# --- (c) reported after the customer's natural visit ---------------------------------------


def _after_natural_visit(
    pids: list[int], period: Period, p: RiskParams, names: dict[int, str]
) -> list[RiskFlag]:
    rows = list(
        Report.objects.filter(
            project_id__in=pids,
            status__in=(RS.REJECTED, RS.INVALID),
            created_at__gte=period.start,
            created_at__lt=period.end,
            reason="developer_protected",
        )
        .values(
            "pk",
            "project_id",
            "customer_id",
            "phone_e164",
            "phone_key",
            "reported_at",
            "status",
            "reason",
            "agent_id",
            "agency__name",
            "agent__name",
            "agent__username",
        )
        .order_by("-created_at", "-pk")[: p.limit]
    )
    if not rows:
        return []
    numbers = {r["phone_e164"] for r in rows if r["customer_id"] is None and r["phone_e164"]}
    by_number = (
        dict(CustomerPhone.objects.filter(number__in=numbers).values_list("number", "customer_id"))
        if numbers
        else {}
    )
    for r in rows:
        if r["customer_id"] is None:
            r["customer_id"] = by_number.get(r["phone_e164"])
    customers = {r["customer_id"] for r in rows if r["customer_id"] is not None}
    visits: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    if customers:
        for visit in (
            Visit.objects.filter(
                customer_id__in=customers,
                project_id__in=pids,
                kind__in=NATURAL_KINDS,
                agent__isnull=True,
            )
            .values(
                "pk",
                "customer_id",
                "project_id",
                "visited_at",
                "kind",
                "consultant__name",
                "consultant__username",
            )
            .order_by("visited_at", "pk")
        ):
            visits[(visit["customer_id"], visit["project_id"])].append(dict(visit))
    found = []
    for r in rows:
        earlier = [
            v
            for v in visits.get((r["customer_id"], r["project_id"]), [])
            if v["visited_at"] < r["reported_at"]
        ]
        if earlier:
            found.append((r, earlier[-1]))
    per_agent = Counter(r["agent_id"] for r, _v in found)
    kinds = dict(VisitKind.choices)
    flags = []
    for r, v in found:
        repeat = per_agent[r["agent_id"]]
        flags.append(
            RiskFlag(
                kind=RiskKind.AFTER_NATURAL_VISIT,
                key=f"after_natural_visit:{r['pk']}",
                project_id=r["project_id"],
                project_name=names[r["project_id"]],
                severity=Severity.HIGH if repeat >= p.repeat_offender else Severity.MEDIUM,
                at=r["reported_at"],
                summary=gettext("Reported %(gap)s after the customer's natural visit")
                % {"gap": _gap(r["reported_at"] - v["visited_at"])},
                evidence=[
                    Evidence(
                        ref=f"sales.visit:{v['pk']}",
                        at=v["visited_at"],
                        what=gettext("Natural visit #%(id)s (%(kind)s)")
                        % {"id": v["pk"], "kind": kinds.get(v["kind"], v["kind"])},
                        party=gettext("Consultant: %(name)s")
                        % {"name": _person(v["consultant__name"], v["consultant__username"])},
                    ),
                    Evidence(
                        ref=f"channel.report:{r['pk']}",
                        at=r["reported_at"],
                        what=_report_what(r["pk"], r["status"], r["reason"]),
                        party=_party(r["agency__name"], r["agent__name"], r["agent__username"]),
                        detail=ngettext(
                            "%(n)s such report by this agent in the period",
                            "%(n)s such reports by this agent in the period",
                            repeat,
                        )
                        % {"n": repeat},
                    ),
                ],
                metrics={"agent_repeats": repeat, "phone": _masked(r["phone_key"])},
            )
        )
    return flags


# --- (d) attribution overridden toward a channel -------------------------------------------


def _override_to_channel(
    pids: list[int], period: Period, p: RiskParams, names: dict[int, str]
) -> list[RiskFlag]:
    outcomes = Attribution.Outcome
    rows = (
        Attribution.objects.filter(
            project_id__in=pids,
            outcome__in=(outcomes.OVERRIDDEN, outcomes.ARBITRATED),
            winner_source=ClaimKind.CHANNEL_REPORT,
            decided_at__gte=period.start,
            decided_at__lt=period.end,
        )
        .values(
            "pk",
            "project_id",
            "customer_id",
            "visit_id",
            "outcome",
            "winner_ref",
            "winner_label",
            "decided_at",
            "decided_by__name",
            "decided_by__username",
            "decided_by__role",
            "override_reason",
            "supersedes_id",
            "supersedes__outcome",
            "supersedes__winner_source",
            "supersedes__winner_label",
            "supersedes__decided_at",
        )
        .order_by("-decided_at", "-pk")[: p.limit]
    )
    roles = dict(Role.choices)
    developer = gettext("the developer (natural visit)")
    flags = []
    for r in rows:
        was_arbitration = r["supersedes__outcome"] == outcomes.ARBITRATION
        from_channel = r["supersedes__winner_source"] in CHANNEL_KINDS
        severity = (
            Severity.LOW if was_arbitration else Severity.MEDIUM if from_channel else Severity.HIGH
        )
        who = _person(r["decided_by__name"], r["decided_by__username"])
        role = roles.get(r["decided_by__role"] or "", "")
        previous = (
            gettext("awaiting arbitration")
            if was_arbitration
            else r["supersedes__winner_label"] or developer
        )
        evidence = [
            Evidence(
                ref=f"sales.attribution:{r['pk']}",
                at=r["decided_at"],
                what=gettext("Decision #%(id)s: credited to %(winner)s")
                % {"id": r["pk"], "winner": r["winner_label"]},
                party=f"{who} ({role})" if role else who,
                detail=r["override_reason"],
            )
        ]
        if r["supersedes_id"]:
            evidence.append(
                Evidence(
                    ref=f"sales.attribution:{r['supersedes_id']}",
                    at=r["supersedes__decided_at"],
                    what=gettext("Decision #%(id)s before: %(winner)s")
                    % {"id": r["supersedes_id"], "winner": previous},
                )
            )
        flags.append(
            RiskFlag(
                kind=RiskKind.OVERRIDE_TO_CHANNEL,
                key=f"override_to_channel:{r['pk']}",
                project_id=r["project_id"],
                project_name=names[r["project_id"]],
                severity=severity,
                at=r["decided_at"],
                summary=gettext("%(who)s credited %(winner)s instead of %(previous)s")
                % {"who": who, "winner": r["winner_label"], "previous": previous},
                evidence=evidence,
                metrics={"reason": r["override_reason"], "outcome": r["outcome"]},
            )
        )
    return flags


# --- (e) conversion far from the peers -----------------------------------------------------


def _conversion_outlier(
    pids: list[int], period: Period, p: RiskParams, names: dict[int, str]
) -> list[RiskFlag]:
    visits = credited_visits(pids, period)
    deals: Counter[tuple[int, int | None]] = Counter()
    for deal in deals_in_period(pids, period):
        if (
            deal.source == Source.CHANNEL
            and deal.report_id is not None
            and period.start <= deal.subscribed_at < period.end
        ):
            deals[(deal.project_id, deal.agency_id)] += 1
    per_project: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for (pid, agency_id), n in visits.items():
        # crowd agents are individuals, not an agency with peers
        if agency_id is not None and n >= p.conversion_min_visits:
            per_project[pid].append((agency_id, n, deals[(pid, agency_id)]))
    found: list[tuple[int, int, int, int, float, float, float, float | None]] = []
    for pid, peers in per_project.items():
        if len(peers) < p.conversion_min_peers:
            continue
        rates = [d / v for _a, v, d in peers]
        median = statistics.median(rates)
        mean = statistics.fmean(rates)
        sd = statistics.pstdev(rates)
        for (agency_id, v, d), rate in zip(peers, rates, strict=True):
            if abs(rate - median) < p.conversion_min_gap:
                continue
            ratio = rate / median if median > 0 else None
            if ratio is not None and 1 / p.conversion_ratio < ratio < p.conversion_ratio:
                continue
            z = (rate - mean) / sd if sd > 0 else 0.0
            found.append((pid, agency_id, v, d, rate, median, z, ratio))
    if not found:
        return []
    agency_names = dict(
        Agency.objects.filter(pk__in={f[1] for f in found}).values_list("pk", "name")
    )
    flags = []
    for pid, agency_id, v, d, rate, median, z, ratio in found:
        far = (
            ratio is None
            or ratio >= p.conversion_ratio * 1.5
            or ratio <= 1 / (p.conversion_ratio * 1.5)
        )
        flags.append(
            RiskFlag(
                kind=RiskKind.CONVERSION_OUTLIER,
                key=f"conversion_outlier:{pid}:{agency_id}:{period.first_day}:{period.last_day}",
                project_id=pid,
                project_name=names[pid],
                severity=Severity.HIGH if far else Severity.MEDIUM,
                at=period.end - dt.timedelta(microseconds=1),
                summary=gettext(
                    "%(agency)s converts %(rate)s of visits to deals; its peers' median is "
                    "%(median)s"
                )
                % {
                    "agency": agency_names.get(agency_id, ""),
                    "rate": f"{rate:.0%}",
                    "median": f"{median:.0%}",
                },
                evidence=[
                    Evidence(
                        ref=f"channels.agency:{agency_id}",
                        at=None,
                        what=gettext("%(visits)s visits, %(deals)s deals")
                        % {"visits": v, "deals": d},
                        party=agency_names.get(agency_id, ""),
                        detail=gettext("z-score %(z)s against %(n)s agencies")
                        % {"z": f"{z:+.1f}", "n": len(per_project[pid])},
                    )
                ],
                metrics={
                    "visits": v,
                    "deals": d,
                    "rate": round(rate, 4),
                    "median": round(median, 4),
                    "z": round(z, 2),
                    "peers": len(per_project[pid]),
                },
            )
        )
    return flags


COMPUTE = {
    RiskKind.SAME_PHONE: _same_phone,
    RiskKind.REPORT_BEFORE_VISIT: _report_before_visit,
    RiskKind.AFTER_NATURAL_VISIT: _after_natural_visit,
    RiskKind.OVERRIDE_TO_CHANNEL: _override_to_channel,
    RiskKind.CONVERSION_OUTLIER: _conversion_outlier,
}


class ReviewState:
    OPEN = "open"
    REVIEWED = "reviewed"


def risk_flags(
    *,
    viewer: Any,
    project_id: int | None = None,
    period: Period | None = None,
    kinds: list[str] | None = None,
    state: str = "",
    params: RiskParams | None = None,
) -> list[RiskFlag]:
    """The flags of the viewer's projects (or one) in the period, worst and newest first,
    each with its review if any. ``state``: "open" (never reviewed, or new evidence since),
    "reviewed", or "" for both."""
    ensure_viewer(viewer, RISK_VIEWERS)
    period = period or period_of()
    params = params or risk_params()
    projects = projects_in_view(viewer, project_id)
    pids = [p.pk for p in projects]
    names = {p.pk: p.name for p in projects}
    wanted = [k for k in RiskKind.values if not kinds or k in kinds]
    flags: list[RiskFlag] = []
    if pids:
        for kind in wanted:
            flags.extend(COMPUTE[RiskKind(kind)](pids, period, params, names))
    if flags:
        reviews = {r.key: r for r in RiskReview.objects.filter(key__in=[f.key for f in flags])}
        for f in flags:
            f.review = reviews.get(f.key)
    if state == ReviewState.OPEN:
        flags = [f for f in flags if not f.reviewed]
    elif state == ReviewState.REVIEWED:
        flags = [f for f in flags if f.reviewed]
    flags.sort(key=lambda f: (SEVERITY_ORDER[f.severity], -f.at.timestamp(), f.key))
    return flags


def risk_flag_get(
    *,
    viewer: Any,
    key: str,
    project_id: int | None = None,
    period: Period | None = None,
    params: RiskParams | None = None,
) -> RiskFlag:
    """One flag by its key, computed afresh with the same filters (404 when it is not
    among the viewer's flags of that period any more)."""
    kind = key.split(":", 1)[0]
    if kind not in RiskKind.values:
        raise NotFound()
    for flag in risk_flags(
        viewer=viewer, project_id=project_id, period=period, kinds=[kind], params=params
    ):
        if flag.key == key:
            return flag
    raise NotFound()


def risk_review(*, actor: Any, flag: RiskFlag, note: str = "") -> RiskReview:
    """Mark a flag reviewed with the evidence it shows now. One review row per flag key (a
    unique constraint): reviewing again after new evidence updates it."""
    ensure_can_write(actor)
    if scope_of(actor).role not in RISK_REVIEWERS:
        raise Forbidden(_("Only a channel manager may do this."), code="channel_manager_only")
    ensure_project_in_scope(actor, flag.project_id)
    now = timezone.now()
    values = {
        "project_id": flag.project_id,
        "kind": flag.kind,
        "evidence": flag.evidence_refs,
        "note": (note or "").strip()[:300],
        "reviewed_by": actor,
        "reviewed_at": now,
    }
    with transaction.atomic(durable=True):
        before = RiskReview.objects.filter(key=flag.key).values("evidence", "note").first()
        if before is not None:
            RiskReview.objects.filter(key=flag.key).update(**values, updated_at=now)
        else:
            try:
                with transaction.atomic():
                    RiskReview.objects.create(key=flag.key, **values)
            except IntegrityError:  # reviewed at the same moment by someone else
                RiskReview.objects.filter(key=flag.key).update(**values, updated_at=now)
        review = RiskReview.objects.get(key=flag.key)
        audit_log(
            actor=actor,
            action="channels.risk.review",
            target=review,
            changes={
                "key": flag.key,
                "kind": flag.kind,
                "severity": flag.severity,
                "evidence": flag.evidence_refs,
                "note": values["note"],
                "before": before,
            },
        )
    return review
