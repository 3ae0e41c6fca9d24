"""Online opening (在线开盘): picks, confirmations and the expiry of unconfirmed holds.

A pick is decided by two conditional UPDATEs in one transaction: the unit (available
AND in this opening → held for the pledge) and the pledge's counter (``units_taken <
max_units`` AND admitted to this opening → +1). Either fails → the whole pick rolls
back. Confirmation and expiry both start from "held by this pledge" and differ only in
``hold_expires_at`` versus now, so whichever commits first wins and the other updates
no row: a hold has exactly one outcome.
"""

import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DatabaseError, DataError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import actor_fields, audit_log
from homeclub.common.context import current_request_meta
from homeclub.common.db import fetchone_with_local_settings, local_settings_sql, statement_scope
from homeclub.common.errors import Busy, Conflict, NotFound, ValidationFailed
from homeclub.common.locking import lock_timeout
from homeclub.org.models import OrgNode

from .live import version_bump_on_commit
from .models import (
    Opening,
    OpeningAdmission,
    OpeningPick,
    PickStatus,
    Pledge,
    PledgeStatus,
    ReleaseBatch,
    Subscription,
    SubscriptionStatus,
    Unit,
    UnitStatus,
)
from .selectors import opening_meta, opening_meta_forget, unit_price_current
from .services import _after_deal, _move, _user, _writer_in

S = UnitStatus
# A pick waits at most this long for a row lock before answering "busy, retry".
PICK_LOCK_TIMEOUT_MS = 2000
# No statement of a pick may run longer than this (a saturated database answers "busy").
PICK_STATEMENT_TIMEOUT_MS = 3000


def opening_create(
    *,
    actor: Any,
    project: OrgNode,
    name: str,
    start_at: dt.datetime,
    units: Iterable[Unit],
    pledges: Iterable[Pledge] = (),
    hold_minutes: int = 15,
    end_at: dt.datetime | None = None,
) -> Opening:
    """An opening reserves its units (unreleased or available, in no other opening) and
    releases them as one batch; from now on they are sold only through picks."""
    _writer_in(actor, project.pk)
    if timezone.is_naive(start_at) or (end_at is not None and timezone.is_naive(end_at)):
        raise ValidationFailed(
            fields={"start_at": [str(_("Enter a date and time with a time zone."))]}
        )
    if hold_minutes < 1:
        raise ValidationFailed(fields={"hold_minutes": [str(_("At least one minute."))]})
    ids = sorted({u.pk for u in units})
    now = timezone.now()
    with transaction.atomic(durable=True):
        opening = Opening.objects.create(
            project=project, name=name, start_at=start_at, end_at=end_at, hold_minutes=hold_minutes
        )
        batch = ReleaseBatch.objects.create(
            project=project,
            name=name,
            released_at=now,
            released_by=_user(actor),
            unit_count=len(ids),
        )
        moved = Unit.objects.filter(
            pk__in=ids,
            project=project,
            status__in=[S.UNRELEASED, S.AVAILABLE],
            opening__isnull=True,
        ).update(
            status=S.AVAILABLE,
            opening=opening,
            release_batch=batch,
            status_changed_at=now,
            updated_at=now,
            version=F("version") + 1,
        )
        if moved != len(ids):
            raise Conflict(
                _("Some units are already sold, held or in another opening."),
                code="unit_not_available",
            )
        _admit(opening, pledges)
        audit_log(
            actor=actor,
            action="inventory.opening.create",
            target=opening,
            changes={"start_at": start_at, "units": ids, "hold_minutes": hold_minutes},
        )
        version_bump_on_commit(project.pk)
        transaction.on_commit(lambda: opening_meta_forget(opening.pk))
    return opening


def _admit(opening: Opening, pledges: Iterable[Pledge]) -> list[int]:
    ids = sorted({p.pk for p in pledges})
    if not ids:
        return []
    ok = Pledge.objects.filter(pk__in=ids, project_id=opening.project_id).count()
    if ok != len(ids):
        raise ValidationFailed(
            fields={"pledges": [str(_("Some pledges are not of this project."))]}
        )
    OpeningAdmission.objects.bulk_create(
        [OpeningAdmission(opening=opening, pledge_id=pid) for pid in ids], ignore_conflicts=True
    )
    return ids


def opening_admit(*, actor: Any, opening: Opening, pledges: Iterable[Pledge]) -> Opening:
    _writer_in(actor, opening.project_id)
    with transaction.atomic(durable=True):
        ids = _admit(opening, pledges)
        audit_log(
            actor=actor, action="inventory.opening.admit", target=opening, changes={"pledges": ids}
        )
    return opening


def opening_pick(
    *,
    actor: Any,
    opening: Opening,
    pledge: Pledge,
    unit: Unit,
    now: dt.datetime | None = None,
) -> OpeningPick:
    """Take ``unit`` for ``pledge`` at once: held until ``now + hold_minutes``.

    Refused before ``start_at`` by the server clock (``now`` is only for tests and the
    rehearsal); refused when the unit is gone or the pledge has used its limit."""
    now = now or timezone.now()
    if now < opening.start_at:
        raise _not_started()
    if opening.end_at is not None and now >= opening.end_at:
        raise _ended()
    if pledge.project_id != opening.project_id:
        raise NotFound()
    return _pick(
        actor=actor,
        opening_id=opening.pk,
        project_id=opening.project_id,
        hold_minutes=opening.hold_minutes,
        pledge_id=pledge.pk,
        unit_id=unit.pk,
        unit_number=unit.number,
        now=now,
    )


def opening_pick_by_id(
    *, actor: Any, opening_id: int, pledge_id: int, unit_id: int, now: dt.datetime | None = None
) -> OpeningPick:
    """The API's pick: the same rules as ``opening_pick`` with the opening read from its
    cached meta, so a refused pick (most of them, in a rush) costs one UPDATE and no
    SELECT. The caller has checked the pledge is the actor's to use."""
    now = now or timezone.now()
    meta = opening_meta(opening_id)
    ts = now.timestamp()
    if ts < meta["start_ts"]:
        raise _not_started()
    if meta["end_ts"] is not None and ts >= meta["end_ts"]:
        raise _ended()
    number = meta["unit_numbers"].get(unit_id)
    if number is None:
        raise NotFound(code="unit_not_found")
    return _pick(
        actor=actor,
        opening_id=opening_id,
        project_id=meta["project_id"],
        hold_minutes=meta["hold_minutes"],
        pledge_id=pledge_id,
        unit_id=unit_id,
        unit_number=number,
        now=now,
    )


def _not_started() -> Conflict:
    return Conflict(_("The opening has not started yet."), code="opening_not_started")


def _ended() -> Conflict:
    return Conflict(_("The opening has ended."), code="opening_ended")


def _pick_timeout_settings() -> dict[str, str]:
    return {
        "lock_timeout": f"{PICK_LOCK_TIMEOUT_MS}ms",
        "statement_timeout": f"{PICK_STATEMENT_TIMEOUT_MS}ms",
    }


@contextmanager
def pick_timeouts() -> Iterator[None]:
    """Bound the pick's transaction on PostgreSQL: a lock wait or a statement past its
    limit is "busy, retry" (503 + Retry-After), never a request hanging until the
    worker is killed. SET LOCAL (``set_config(..., true)``) ends with the transaction."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(*local_settings_sql(_pick_timeout_settings()))
    try:
        yield
    except DatabaseError as exc:
        if _is_busy(exc):
            raise Busy() from exc
        raise


def _is_busy(exc: DatabaseError) -> bool:
    text = str(exc)
    return any(
        m in text
        for m in ("lock timeout", "statement timeout", "could not obtain lock", "deadlock detected")
    )


def _take(
    unit_id: int, opening_id: int, pledge_id: int, now: dt.datetime, expires_at: dt.datetime
) -> bool:
    """services._move for the hottest transition, as plain SQL: in a rush most picks are
    refusals, and the ORM's compilation of this UPDATE costs more than running it."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Unit._meta.db_table} SET status = %s, status_changed_at = %s,"  # noqa: S608
            " updated_at = %s, version = version + 1, hold_pledge_id = %s, hold_expires_at = %s"
            " WHERE id = %s AND status = %s AND opening_id = %s",
            [S.HELD, now, now, pledge_id, expires_at, unit_id, S.AVAILABLE, opening_id],
        )
        return cursor.rowcount == 1


def _pick(
    *,
    actor: Any,
    opening_id: int,
    project_id: int,
    hold_minutes: int,
    pledge_id: int,
    unit_id: int,
    unit_number: str,
    now: dt.datetime,
) -> OpeningPick:
    expires_at = now + dt.timedelta(minutes=hold_minutes)
    if connection.vendor == "postgresql":
        return _pick_one_statement(
            actor=actor,
            opening_id=opening_id,
            project_id=project_id,
            pledge_id=pledge_id,
            unit_id=unit_id,
            unit_number=unit_number,
            now=now,
            expires_at=expires_at,
        )
    try:
        with transaction.atomic(durable=True), pick_timeouts():
            # The unit first: most refusals are units already taken, which never touch
            # the pledge row.
            if not _take(unit_id, opening_id, pledge_id, now, expires_at):
                raise _unit_gone()
            counted = Pledge.objects.filter(
                pk=pledge_id,
                status=PledgeStatus.ACTIVE,
                units_taken__lt=F("max_units"),
                admissions__opening_id=opening_id,
            ).update(units_taken=F("units_taken") + 1, updated_at=now)
            if not counted:
                raise _pledge_refusal(pledge_id, opening_id)
            pick = OpeningPick.objects.create(
                opening_id=opening_id,
                pledge_id=pledge_id,
                unit_id=unit_id,
                status=PickStatus.HELD,
                expires_at=expires_at,
            )
            audit_log(
                actor=actor,
                action="inventory.opening.pick",
                target_type="inventory.unit",
                target_id=str(unit_id),
                target_repr=unit_number,
                changes={
                    "status": [S.AVAILABLE, S.HELD],
                    "pledge": pledge_id,
                    "pick": pick.pk,
                    "expires_at": expires_at,
                },
            )
            version_bump_on_commit(project_id)
    except IntegrityError as exc:
        raise _unit_gone() from exc
    return pick


def _unit_gone() -> Conflict:
    return Conflict(_("This unit is no longer available."), code="unit_not_available")


# The whole pick as ONE prepared statement, sent in one pipeline after the
# ``set_config(..., true)`` of its two timeouts (PICK_LOCK_TIMEOUT_MS, PICK_STATEMENT_TIMEOUT_MS):
# in autocommit PostgreSQL runs a pipeline's statements up to its Sync as one implicit
# transaction, so the timeouts end with it and any error rolls all of it back. In a rush
# most picks are misses; this way a miss costs one round trip to the database (as the raw
# baseline's UPDATE does) instead of BEGIN, SET, UPDATE, ROLLBACK, and a hold costs one
# round trip plus its commit; and being prepared, the statement is planned once per
# connection (planning this CTE costs several times running it). The conditions are the
# same as the portable path's: the unit's conditional UPDATE, then the pledge's counter
# (only if the unit was taken), the pick row and the audit row (only if the pledge
# counted). When the unit was taken but the pledge refused, the last SELECT raises a cast
# error naming the refusal, which rolls the unit back; the refusal's reason is then read
# as on the portable path.
_PICK_SQL = """WITH u AS (
  UPDATE inventory_unit
     SET status = 'held', status_changed_at = %(now)s, updated_at = %(now)s,
         version = version + 1, hold_pledge_id = %(pledge)s, hold_expires_at = %(expires)s
   WHERE id = %(unit)s AND status = 'available' AND opening_id = %(opening)s
  RETURNING id
), p AS (
  UPDATE inventory_pledge
     SET units_taken = units_taken + 1, updated_at = %(now)s
   WHERE id = %(pledge)s AND status = 'active' AND units_taken < max_units
     AND EXISTS (SELECT 1 FROM u)
     AND EXISTS (SELECT 1 FROM inventory_openingadmission a
                  WHERE a.pledge_id = %(pledge)s AND a.opening_id = %(opening)s)
  RETURNING id
), k AS (
  INSERT INTO inventory_openingpick
         (created_at, updated_at, status, expires_at, opening_id, pledge_id, unit_id)
  SELECT %(now)s, %(now)s, 'held', %(expires)s, %(opening)s, %(pledge)s, %(unit)s FROM p
  RETURNING id
), a AS (
  INSERT INTO common_auditevent
         (created_at, actor_id, actor_label, action, object_type, object_id, object_repr,
          changes, ip, user_agent, request_id)
  SELECT %(now)s, %(actor_id)s, %(actor_label)s, 'inventory.opening.pick', 'inventory.unit',
         %(unit_text)s, %(unit_number)s,
         jsonb_build_object('status', jsonb_build_array('available', 'held'),
                            'pledge', %(pledge)s::bigint, 'pick', k.id,
                            'expires_at', %(expires_iso)s::text),
         %(ip)s::inet, %(user_agent)s, %(request_id)s
    FROM k
  RETURNING id
)
SELECT u.id, p.id, k.id, a.id,
       CASE WHEN u.id IS NOT NULL AND p.id IS NULL
            THEN ('pledge_refused:' || u.id::text)::int END
  FROM (SELECT 1) AS one
  LEFT JOIN u ON TRUE LEFT JOIN p ON TRUE LEFT JOIN k ON TRUE LEFT JOIN a ON TRUE
"""


def _pick_one_statement(
    *,
    actor: Any,
    opening_id: int,
    project_id: int,
    pledge_id: int,
    unit_id: int,
    unit_number: str,
    now: dt.datetime,
    expires_at: dt.datetime,
) -> OpeningPick:
    """The PostgreSQL pick: see ``_PICK_SQL``. Outside any transaction (a request) it
    is its own transaction; inside one (tests, a caller's atomic) a savepoint keeps a
    refusal from aborting the caller's transaction."""
    user, label = actor_fields(actor)
    actor_id = getattr(user, "pk", None)
    meta = current_request_meta()
    params: dict[str, Any] = {
        "now": now,
        "expires": expires_at,
        "expires_iso": expires_at.isoformat(),
        "pledge": pledge_id,
        "unit": unit_id,
        "opening": opening_id,
        "actor_id": actor_id,
        "actor_label": label,
        "unit_text": str(unit_id),
        "unit_number": unit_number[:200],
        "ip": meta.ip,
        "user_agent": meta.user_agent,
        "request_id": meta.request_id,
    }
    try:
        with statement_scope():
            row = fetchone_with_local_settings(_PICK_SQL, params, _pick_timeout_settings())
    except DataError as exc:
        if "pledge_refused:" in str(exc):
            raise _pledge_refusal(pledge_id, opening_id) from exc
        raise
    except IntegrityError as exc:
        raise _unit_gone() from exc
    except DatabaseError as exc:
        if _is_busy(exc):
            raise Busy() from exc
        raise
    if row is None or row[0] is None:
        raise _unit_gone()
    version_bump_on_commit(project_id)
    return OpeningPick(
        pk=row[2],
        opening_id=opening_id,
        pledge_id=pledge_id,
        unit_id=unit_id,
        status=PickStatus.HELD,
        expires_at=expires_at,
        created_at=now,
        updated_at=now,
    )


def _pledge_refusal(pledge_id: int, opening_id: int) -> Conflict:
    """Why the pledge's conditional UPDATE matched nothing (read only on refusal)."""
    pledge = Pledge.objects.filter(pk=pledge_id).values("status", "units_taken", "max_units").get()
    if pledge["status"] != PledgeStatus.ACTIVE:
        return Conflict(_("This pledge is no longer active."), code="pledge_inactive")
    if not OpeningAdmission.objects.filter(pledge_id=pledge_id, opening_id=opening_id).exists():
        return Conflict(
            _("This pledge is not admitted to this opening."), code="pledge_not_admitted"
        )
    return Conflict(
        _("This pledge has already taken all the units it may take."), code="pledge_limit_reached"
    )


def opening_confirm(
    *, actor: Any, pick: OpeningPick, now: dt.datetime | None = None
) -> Subscription:
    """A held pick becomes a subscription at the current price list, unless its hold has
    expired: the unit's conditional UPDATE decides, against the expiry task."""
    now = now or timezone.now()
    pledge = pick.pledge
    unit = pick.unit
    with transaction.atomic(durable=True), lock_timeout(PICK_LOCK_TIMEOUT_MS):
        won = _move(
            unit.pk,
            frm=[S.HELD],
            to=S.SUBSCRIBED,
            now=now,
            where={"hold_pledge_id": pledge.pk, "hold_expires_at__gt": now},
            hold_pledge=None,
            hold_expires_at=None,
        )
        confirmed = won and OpeningPick.objects.filter(pk=pick.pk, status=PickStatus.HELD).update(
            status=PickStatus.CONFIRMED, updated_at=now
        )
        if not confirmed:
            raise Conflict(
                _("The confirmation time has passed; the unit is back on sale."),
                code="hold_expired",
            )
        list_price, item = unit_price_current(unit=unit, at=now)
        sub = Subscription.objects.create(
            project_id=unit.project_id,
            unit=unit,
            customer_id=pledge.customer_id,
            consultant_id=pledge.consultant_id,
            pledge=pledge,
            status=SubscriptionStatus.ACTIVE,
            list_price=list_price,
            price_item=item,
            agreed_price=list_price,
            deposit=pledge.deposit,
            subscribed_at=now,
        )
        Unit.objects.filter(pk=unit.pk).update(subscription=sub)
        OpeningPick.objects.filter(pk=pick.pk).update(subscription=sub)
        audit_log(
            actor=actor,
            action="inventory.opening.confirm",
            target_type="inventory.unit",
            target_id=str(unit.pk),
            target_repr=unit.number,
            changes={"status": [S.HELD, S.SUBSCRIBED], "pick": pick.pk, "subscription": sub.pk},
        )
        version_bump_on_commit(unit.project_id)
        _after_deal(actor=actor, subscription=sub, event="subscribed")
    pick.refresh_from_db()
    return sub


def holds_release_expired(*, now: dt.datetime | None = None, limit: int = 2000) -> int:
    """Return every hold past its expiry to sale; return how many were released.

    Each unit is released by a conditional UPDATE naming its holder and the expiry, so a
    confirmation that committed first leaves nothing to release, and one that comes later
    finds the unit no longer held by it."""
    now = now or timezone.now()
    candidates = list(
        Unit.objects.filter(status=S.HELD, hold_expires_at__lte=now)
        .order_by("hold_expires_at")
        .values_list("pk", "number", "project_id", "hold_pledge_id", "subscription_id")[:limit]
    )
    released = 0
    for pk, number, project_id, pledge_id, sub_id in candidates:
        with transaction.atomic(durable=True):
            if not _move(
                pk,
                frm=[S.HELD],
                to=S.AVAILABLE,
                now=now,
                where={
                    "hold_expires_at__lte": now,
                    "hold_pledge_id": pledge_id,
                    "subscription_id": sub_id,
                },
                hold_pledge=None,
                subscription=None,
                hold_expires_at=None,
            ):
                continue
            if pledge_id:
                OpeningPick.objects.filter(
                    unit_id=pk, pledge_id=pledge_id, status=PickStatus.HELD
                ).update(status=PickStatus.EXPIRED, updated_at=now)
                Pledge.objects.filter(pk=pledge_id, units_taken__gt=0).update(
                    units_taken=F("units_taken") - 1, updated_at=now
                )
            if sub_id:
                Subscription.objects.filter(
                    pk=sub_id, status=SubscriptionStatus.PENDING_APPROVAL
                ).update(
                    status=SubscriptionStatus.EXPIRED,
                    ended_at=now,
                    end_reason="approval not given in time",
                    updated_at=now,
                )
            audit_log(
                actor=None,
                action="inventory.hold.expire",
                target_type="inventory.unit",
                target_id=str(pk),
                target_repr=number,
                changes={
                    "status": [S.HELD, S.AVAILABLE],
                    "pledge": pledge_id,
                    "subscription": sub_id,
                },
            )
            version_bump_on_commit(project_id)
            released += 1
    return released


def opening_close(*, actor: Any, opening: Opening, now: dt.datetime | None = None) -> int:
    """After the opening: units still available leave it and go on ordinary sale."""
    _writer_in(actor, opening.project_id)
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        n = Unit.objects.filter(opening=opening, status=S.AVAILABLE).update(
            opening=None, updated_at=now, version=F("version") + 1
        )
        Opening.objects.filter(pk=opening.pk, end_at__isnull=True).update(end_at=now)
        audit_log(
            actor=actor, action="inventory.opening.close", target=opening, changes={"units": n}
        )
        version_bump_on_commit(opening.project_id)
        transaction.on_commit(lambda: opening_meta_forget(opening.pk))
    return n
