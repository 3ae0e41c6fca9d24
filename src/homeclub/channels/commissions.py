"""Channel commissions (佣金): schemes, earning at the deal's trigger, clawback on
cancellation, settlement statements with an approval step, and the XLSX statement.

Choices, each documented where it is made:

- **Which scheme**: the latest version of the agency's scheme in the project whose
  ``valid_from``/``valid_to`` cover the local day of the subscription (认购日). It is
  pinned on the :class:`CommissionDeal` when the deal is made, so a later trigger
  (signing, collection) pays by the terms of the day the deal was made.
- **Base**: the contract price once a (live) contract exists, the subscription's agreed
  price before that.
- **Tiers** rate a deal by its rank among the agency's standing deals in the project in
  the calendar month (Asia/Shanghai) the commission is earned: rank = 1 + earned entries of
  that month whose deal was not cancelled. Each deal keeps the rate of its rank (marginal
  tiers, like tax brackets): a later deal never re-rates an earlier one, and a
  cancellation claws back only the cancelled deal's own commission — so a clawback is
  always exactly what that deal was paid. The agency row is locked while the rank is
  counted, so two deals of one agency never share a rank.
- **Trigger**: the state of the deal decides, not the event name — a subscription trigger
  is reached by an active or signed subscription, a signing trigger by a signed one, a
  collection trigger when ``paid_total / price ≥ collected_share``. Every deal event and
  every payment re-checks; the unique index ``commission_entry_once`` makes earning twice
  impossible, also under races.
- **Cancellation** (退房/退订) writes a clawback of minus the deal's earned amount plus its
  adjustments, to the fen; it is unsettled, so the next statement carries it (an agency
  already paid sees it deducted there). **Rename** (更名) keeps the commission with the
  agent fixed on the deal. **Swap** (换房) recomputes on the new price: a deal already
  earned gets an adjustment of the difference (fixed schemes: none).
- **Statements** are per agency, per project (each project company pays its own
  commissions, and a manager's scope is projects) and per period: a statement gathers
  every entry of the agency in the project up to the period's last day that is on no
  statement yet — so a clawback or an entry released by a voided statement is carried
  into the next one. Channel manager (or admin) creates and submits; **finance is
  ``Role.ADMIN``** (there is no finance role), and the person who submitted may not
  approve (four eyes). Approval settles the entries and moves the credited reports to
  ``settled``; finance then marks the statement paid.
- Crowd agents (全民经纪人) have no agency, so no agency commission: their rewards are the
  referral domain's.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import Busy, Forbidden, NotFound, ValidationFailed
from homeclub.common.locking import lock_rows
from homeclub.common.money import ZERO, yuan
from homeclub.inventory.models import Contract, Subscription, SubscriptionStatus
from homeclub.org.models import OrgNode
from homeclub.org.roles import Role
from homeclub.org.scoping import (
    ensure_can_write,
    ensure_project_in_scope,
    scope_of,
    scoped,
)

from .models import Agency, AgencyContract
from .models_commission import (
    CommissionDeal,
    CommissionEntry,
    CommissionKind,
    CommissionScheme,
    CommissionTrigger,
    EntryKind,
    StatementStatus,
)
from .services import CHANNEL_ADMINS, report_for_deal

K, T, E, SS = CommissionKind, CommissionTrigger, EntryKind, StatementStatus
FINANCE = frozenset({Role.ADMIN})
DEAL_EVENTS = ("subscribed", "signed", "cancelled", "swapped", "renamed")
HUNDRED = Decimal(100)
MAX_PERCENT = Decimal(100)
MAX_FIXED = Decimal("100000000")  # a hundred million yuan per deal is a typo
MAX_TIERS = 20
MAX_PERIOD_DAYS = 366


# --- rules (pure) --------------------------------------------------------------------------


def tier_rate(tiers: Sequence[dict[str, Any]], rank: int) -> Decimal:
    """The percent of the tier the ``rank``-th deal falls in (tiers start at rank 1)."""
    rate = ZERO
    for tier in sorted(tiers, key=lambda t: int(t["from"])):
        if rank >= int(tier["from"]):
            rate = Decimal(str(tier["percent"]))
    return rate


def commission_amount(
    scheme: CommissionScheme, *, base: Decimal, rank: int | None
) -> tuple[Decimal, Decimal | None]:
    """(amount in yuan to the fen, percent applied or None for a fixed amount)."""
    if scheme.kind == K.FIXED:
        return yuan(scheme.fixed_amount or ZERO), None
    if scheme.kind == K.PERCENT:
        rate = Decimal(scheme.percent or ZERO)
    else:
        rate = tier_rate(scheme.tiers, rank or 1)
    return yuan(yuan(base) * rate / HUNDRED), rate


def month_bounds(day: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day of ``day``'s month."""
    first = day.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return first, following - dt.timedelta(days=1)


def _local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


# --- helpers ------------------------------------------------------------------------------


def _ensure_channel_admin(actor: Any) -> None:
    ensure_can_write(actor)
    if scope_of(actor).role not in CHANNEL_ADMINS:
        raise Forbidden(
            _("Only a channel manager may manage commissions."), code="channel_manager_only"
        )


def _ensure_finance(actor: Any) -> None:
    ensure_can_write(actor)
    if scope_of(actor).role not in FINANCE:
        raise Forbidden(
            _("Only finance (a system administrator) may approve, reject or pay statements."),
            code="finance_only",
        )


def _agency_visible(actor: Any, agency: Agency | int) -> Agency:
    pk = agency.pk if isinstance(agency, Agency) else agency
    found = scoped(Agency.objects.filter(pk=pk), actor).first()
    if found is None:
        raise NotFound(_("Agency not found."), code="agency_not_found")
    return found


def _project(actor: Any, project: OrgNode | int) -> OrgNode:
    pk = project.pk if isinstance(project, OrgNode) else project
    found = OrgNode.objects.filter(pk=pk, kind=OrgNode.Kind.PROJECT).first()
    if found is None:
        raise NotFound(_("Project not found."), code="project_not_found")
    ensure_project_in_scope(actor, found.pk)
    return found


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, float | bool):
        return None
    try:
        result = Decimal(str(value).strip().rstrip("%").strip())
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def _percent(value: Any) -> Decimal | None:
    """A percent above 0 and at most 100 with up to four decimals, else None."""
    p = _decimal(value)
    if p is None or p <= 0 or p > MAX_PERCENT or p != p.quantize(Decimal("0.0001")):
        return None
    return p.quantize(Decimal("0.0001"))


# --- schemes ------------------------------------------------------------------------------


def _clean_tiers(
    tiers: Iterable[tuple[int, Any]] | None, errors: dict[str, list[str]]
) -> list[dict[str, Any]]:
    rows = list(tiers or [])
    message = gettext(
        "Enter tiers as starting rank and percent: the first from rank 1, ranks rising, "
        "each percent above 0 and at most 100."
    )
    if not rows or len(rows) > MAX_TIERS:
        errors["tiers"] = [message]
        return []
    out: list[dict[str, Any]] = []
    previous = 0
    for start, pct in rows:
        p = _percent(pct)
        if not isinstance(start, int) or isinstance(start, bool) or p is None:
            errors["tiers"] = [message]
            return []
        if (not out and start != 1) or start <= previous:
            errors["tiers"] = [message]
            return []
        out.append({"from": start, "percent": str(p)})
        previous = start
    return out


def commission_scheme_create(
    *,
    actor: Any,
    agency: Agency,
    project: OrgNode,
    kind: str,
    trigger: str,
    valid_from: dt.date,
    valid_to: dt.date | None = None,
    fixed_amount: Decimal | str | None = None,
    percent: Decimal | str | None = None,
    tiers: Iterable[tuple[int, Decimal | str]] | None = None,
    collected_share: Decimal | str | None = None,
    note: str = "",
) -> CommissionScheme:
    """A new version of the agency's commission in the project. Versions count up per
    agency and project (a unique constraint); the highest version covering a day wins."""
    _ensure_channel_admin(actor)
    proj = _project(actor, project)
    agency = _agency_visible(actor, agency)
    errors: dict[str, list[str]] = {}
    if kind not in K.values:
        errors["kind"] = [gettext("Select a valid choice.")]
    if trigger not in T.values:
        errors["trigger"] = [gettext("Select a valid choice.")]
    if not isinstance(valid_from, dt.date) or isinstance(valid_from, dt.datetime):
        errors["valid_from"] = [gettext("Enter a valid date.")]
    elif valid_to is not None and (
        not isinstance(valid_to, dt.date)
        or isinstance(valid_to, dt.datetime)
        or valid_to < valid_from
    ):
        errors["valid_to"] = [gettext("The end date cannot be before the start date.")]
    values: dict[str, Any] = {"fixed_amount": None, "percent": None, "tiers": []}
    if kind == K.FIXED:
        amount = _decimal(fixed_amount)
        if amount is None or amount <= 0 or amount >= MAX_FIXED or amount != yuan(amount):
            errors["fixed_amount"] = [gettext("Enter an amount in yuan above 0, to the fen.")]
        else:
            values["fixed_amount"] = yuan(amount)
    elif kind == K.PERCENT:
        values["percent"] = _percent(percent)
        if values["percent"] is None:
            errors["percent"] = [
                gettext("Enter a percent above 0 and at most 100, e.g. 1.5 for 1.5%.")
            ]
    elif kind == K.TIERS:
        values["tiers"] = _clean_tiers(tiers, errors)
    share = None
    if trigger == T.COLLECTED:
        share = _percent(collected_share)
        if share is None or share != share.quantize(Decimal("0.01")):
            errors["collected_share"] = [
                gettext("Enter the share of the price collected, above 0 and at most 100%.")
            ]
            share = None
    if not errors and not AgencyContract.objects.filter(agency=agency, project=proj).exists():
        errors["agency"] = [gettext("This agency has no contract with this project.")]
    if errors:
        raise ValidationFailed(fields=errors)
    for _attempt in range(3):
        try:
            with transaction.atomic(durable=True):
                last = (
                    CommissionScheme.objects.filter(agency=agency, project=proj)
                    .order_by("-version")
                    .values_list("version", flat=True)
                    .first()
                )
                scheme = CommissionScheme.objects.create(
                    agency=agency,
                    project=proj,
                    version=(last or 0) + 1,
                    kind=kind,
                    trigger=trigger,
                    collected_share=share,
                    valid_from=valid_from,
                    valid_to=valid_to,
                    note=(note or "").strip()[:200],
                    created_by=actor,
                    **values,
                )
                audit_log(
                    actor=actor,
                    action="channels.commission_scheme.create",
                    target=scheme,
                    changes={
                        "agency": agency.pk,
                        "project": proj.pk,
                        "version": scheme.version,
                        "kind": kind,
                        "trigger": trigger,
                        "collected_share": share,
                        "valid_from": valid_from,
                        "valid_to": valid_to,
                        **values,
                    },
                )
            return scheme
        except IntegrityError:
            continue  # another version was numbered at the same moment: number again
    raise Busy()


def scheme_for(*, agency_id: int, project_id: int, day: dt.date) -> CommissionScheme | None:
    """The scheme version in force on ``day``: the highest version covering it."""
    return (
        CommissionScheme.objects.filter(
            Q(valid_to__isnull=True) | Q(valid_to__gte=day),
            agency_id=agency_id,
            project_id=project_id,
            valid_from__lte=day,
        )
        .order_by("-version")
        .first()
    )


# --- earning, adjustment, clawback (inside the deal's transaction) -------------------------


def _deal_of(sub: Subscription, *, open_new: bool) -> CommissionDeal | None:
    """The deal's credited report, fixed the first time the deal is seen; None when no
    agency's report is credited."""
    deal = CommissionDeal.objects.select_related("scheme").filter(subscription_id=sub.pk).first()
    if deal is not None or not open_new:
        return deal
    report = report_for_deal(customer_id=sub.customer_id, project_id=sub.project_id)
    if report is None or report.agency_id is None:
        return None
    scheme = scheme_for(
        agency_id=report.agency_id,
        project_id=sub.project_id,
        day=timezone.localdate(sub.subscribed_at),
    )
    try:
        with transaction.atomic():
            return CommissionDeal.objects.create(
                subscription=sub,
                report=report,
                project_id=sub.project_id,
                agency_id=report.agency_id,
                agent_id=report.agent_id,
                scheme=scheme,
            )
    except IntegrityError:  # the same deal, opened by a concurrent event
        return CommissionDeal.objects.select_related("scheme").get(subscription_id=sub.pk)


def _scheme_of(deal: CommissionDeal, sub: Subscription) -> CommissionScheme | None:
    """The pinned scheme; a deal made before any scheme existed takes the version now
    covering its subscription day (and pins it)."""
    if deal.scheme is not None:
        return deal.scheme
    scheme = scheme_for(
        agency_id=deal.agency_id,
        project_id=deal.project_id,
        day=timezone.localdate(sub.subscribed_at),
    )
    if scheme is not None:
        CommissionDeal.objects.filter(pk=deal.pk, scheme__isnull=True).update(
            scheme=scheme, updated_at=timezone.now()
        )
        deal.scheme = scheme
    return scheme


def _live_contract(sub: Subscription) -> Contract | None:
    return Contract.objects.filter(subscription_id=sub.pk, cancelled_at__isnull=True).first()


def _reached(scheme: CommissionScheme, sub: Subscription, contract: Contract | None) -> bool:
    if scheme.trigger == T.SUBSCRIBED:
        return sub.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.SIGNED)
    if sub.status != SubscriptionStatus.SIGNED or contract is None:
        return False
    if scheme.trigger == T.SIGNED:
        return True
    share = scheme.collected_share or HUNDRED
    return contract.price > 0 and contract.paid_total * HUNDRED >= contract.price * share


def _base(sub: Subscription, contract: Contract | None) -> Decimal:
    return contract.price if contract is not None else sub.agreed_price


def _standing_in_month(agency_id: int, project_id: int, at: dt.datetime) -> int:
    """Earned entries of the agency in the project in ``at``'s local month whose deal was
    not cancelled — the volume a tier counts."""
    first, last = month_bounds(timezone.localdate(at))
    clawed = CommissionEntry.objects.filter(
        subscription_id=OuterRef("subscription_id"), kind=E.CLAWBACK
    )
    return (
        CommissionEntry.objects.filter(
            agency_id=agency_id,
            project_id=project_id,
            kind=E.EARNED,
            occurred_at__gte=_local_midnight(first),
            occurred_at__lt=_local_midnight(last + dt.timedelta(days=1)),
        )
        .exclude(Exists(clawed))
        .count()
    )


def _audit_entry(actor: Any, entry: CommissionEntry, action: str) -> None:
    audit_log(
        actor=actor,
        action=f"channels.commission.{action}",
        target=entry,
        changes={
            "kind": entry.kind,
            "amount": entry.amount,
            "base_amount": entry.base_amount,
            "rate": entry.rate,
            "rank": entry.rank,
            "subscription": entry.subscription_id,
            "report": entry.report_id,
            "scheme": entry.scheme_id,
            "scheme_version": entry.scheme_version,
        },
    )


def _earn(
    deal: CommissionDeal, sub: Subscription, actor: Any, now: dt.datetime
) -> CommissionEntry | None:
    scheme = _scheme_of(deal, sub)
    if scheme is None:
        return None
    contract = _live_contract(sub)
    if not _reached(scheme, sub, contract):
        return None
    mine = CommissionEntry.objects.filter(report_id=deal.report_id, subscription_id=sub.pk)
    if mine.filter(kind__in=[E.EARNED, E.CLAWBACK]).exists():
        return None  # the fast answer; the unique index is what decides
    rank = None
    if scheme.kind == K.TIERS:
        # Two deals of the agency earning at once would count the same volume.
        lock_rows(Agency.objects.filter(pk=deal.agency_id))
        rank = 1 + _standing_in_month(deal.agency_id, deal.project_id, now)
    base = _base(sub, contract)
    amount, rate = commission_amount(scheme, base=base, rank=rank)
    try:
        with transaction.atomic():
            entry = CommissionEntry.objects.create(
                deal=deal,
                report_id=deal.report_id,
                subscription_id=sub.pk,
                project_id=deal.project_id,
                agency_id=deal.agency_id,
                agent_id=deal.agent_id,
                scheme=scheme,
                scheme_version=scheme.version,
                kind=E.EARNED,
                trigger=scheme.trigger,
                base_amount=base,
                rate=rate,
                rank=rank,
                amount=amount,
                occurred_at=now,
            )
    except IntegrityError:
        return None  # earned by a concurrent event of the same deal
    _audit_entry(actor, entry, "earn")
    return entry


def _net(sub: Subscription, report_id: int) -> Decimal:
    amounts = CommissionEntry.objects.filter(
        subscription_id=sub.pk, report_id=report_id, kind__in=[E.EARNED, E.ADJUSTMENT]
    ).values_list("amount", flat=True)
    return sum(amounts, ZERO)


def _earned_locked(deal: CommissionDeal, sub: Subscription) -> CommissionEntry | None:
    rows = lock_rows(
        CommissionEntry.objects.filter(report_id=deal.report_id, subscription_id=sub.pk).filter(
            kind=E.EARNED
        )
    )
    return rows[0] if rows else None


def _clawed(deal: CommissionDeal, sub: Subscription) -> bool:
    return CommissionEntry.objects.filter(
        report_id=deal.report_id, subscription_id=sub.pk, kind=E.CLAWBACK
    ).exists()


def _readjust(
    deal: CommissionDeal, sub: Subscription, actor: Any, now: dt.datetime
) -> CommissionEntry | None:
    """换房: a deal already earned is recomputed on its new price, at its own rank; the
    difference is an adjustment. The earned row's lock serialises two swaps."""
    earned = _earned_locked(deal, sub)
    if earned is None or _clawed(deal, sub):
        return None
    scheme = earned.scheme
    contract = _live_contract(sub)
    base = _base(sub, contract)
    target, rate = commission_amount(scheme, base=base, rank=earned.rank)
    delta = target - _net(sub, deal.report_id)
    if delta == ZERO:
        return None
    entry = CommissionEntry.objects.create(
        deal=deal,
        report_id=deal.report_id,
        subscription_id=sub.pk,
        project_id=deal.project_id,
        agency_id=deal.agency_id,
        agent_id=deal.agent_id,
        scheme=scheme,
        scheme_version=earned.scheme_version,
        kind=E.ADJUSTMENT,
        trigger=earned.trigger,
        base_amount=base,
        rate=rate,
        rank=earned.rank,
        amount=delta,
        occurred_at=now,
        reverses=earned,
        note=gettext("Unit changed: recomputed on the new price"),
    )
    _audit_entry(actor, entry, "adjust")
    return entry


def _clawback(
    deal: CommissionDeal, sub: Subscription, actor: Any, now: dt.datetime
) -> CommissionEntry | None:
    """退房: minus everything the deal earned (adjustments included), to the fen."""
    earned = _earned_locked(deal, sub)
    if earned is None:
        return None  # cancelled before its trigger: nothing was earned
    net = _net(sub, deal.report_id)
    try:
        with transaction.atomic():
            entry = CommissionEntry.objects.create(
                deal=deal,
                report_id=deal.report_id,
                subscription_id=sub.pk,
                project_id=deal.project_id,
                agency_id=deal.agency_id,
                agent_id=deal.agent_id,
                scheme=earned.scheme,
                scheme_version=earned.scheme_version,
                kind=E.CLAWBACK,
                trigger=earned.trigger,
                base_amount=earned.base_amount,
                rate=None,
                rank=earned.rank,
                amount=-net,
                occurred_at=now,
                reverses=earned,
                note=(sub.end_reason or "")[:200],
            )
    except IntegrityError:
        return None  # clawed back by a concurrent event of the same cancellation
    _audit_entry(actor, entry, "clawback")
    return entry


def commission_on_deal(
    *, actor: Any, subscription: Subscription, event: str
) -> CommissionEntry | None:
    """For the inventory's deal hook (``_after_deal``), inside the deal's transaction
    (its own when there is none). ``event``: subscribed, signed, cancelled, swapped,
    renamed. Returns the entry this event wrote, None when it wrote none.

    Keeps: a deal earns once and is clawed back once (unique index
    ``commission_entry_once``), whatever the number of events and their concurrency; a
    clawback is exactly minus what the deal earned. Not a user action: the deal's own
    service checked its actor."""
    if event not in DEAL_EVENTS:
        raise ValidationFailed(fields={"event": [gettext("Select a valid choice.")]})
    if event == "renamed":
        return None  # the commission stays with the agent fixed on the deal
    now = timezone.now()
    with transaction.atomic():
        sub = Subscription.objects.get(pk=subscription.pk)
        deal = _deal_of(sub, open_new=event in ("subscribed", "signed"))
        if deal is None:
            return None
        if event == "cancelled":
            return _clawback(deal, sub, actor, now)
        if event == "swapped":
            return _readjust(deal, sub, actor, now)
        return _earn(deal, sub, actor, now)


def commission_on_payment(*, actor: Any, contract: Contract) -> CommissionEntry | None:
    """For ``payment_record``, inside its transaction after ``paid_total`` moved: a
    collection trigger reached by this payment earns the commission (once)."""
    now = timezone.now()
    with transaction.atomic():
        sub = Subscription.objects.get(pk=contract.subscription_id)
        deal = _deal_of(sub, open_new=True)
        if deal is None:
            return None
        return _earn(deal, sub, actor, now)
