"""The simulated opening, run on the default database (in the command: the copy)."""

import datetime as dt
import heapq
import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction
from django.db.models import Count, Max
from django.utils import timezone

from homeclub.common.audit import audit_log
from homeclub.common.errors import Busy, Conflict

from ..buyers import favourite_heat, followup_list, similar_units
from ..models import (
    LIVE_SUBSCRIPTION,
    Favourite,
    Opening,
    OpeningPick,
    PickStatus,
    Pledge,
    PledgeStatus,
    Subscription,
    Unit,
    UnitStatus,
)
from ..openings import holds_release_expired, opening_confirm, opening_pick
from ..selectors import opening_meta_forget

# A buyer's first click, relative to the start: some press a little early (the server
# clock refuses them), most within the first second.
FIRST_CLICK_S = (-0.3, 0.8)
THINK_S = (0.05, 0.3)
CONFIRM_DELAY_S = (0.1, 0.6)
MAX_ATTEMPTS = 30
RUSH_DEADLINE_S = 600.0
SOLD = (UnitStatus.SUBSCRIBED, UnitStatus.SIGNED)


@dataclass(eq=False)
class _Buyer:
    pledge: Pledge
    actor: Any
    wants: int
    favourites: list[int]
    rng: random.Random
    tried: set[int] = field(default_factory=set)
    current: int | None = None
    last: Unit | None = None
    holds: int = 0
    attempts: int = 0
    answer: str = ""


Event = tuple[float, str, _Buyer, OpeningPick | None]


class _Rush:
    """Buyers as a timeline of events (a click, a confirmation) worked off by ``threads``
    workers, each with its own database connection: as many picks in flight at once as
    workers, each buyer with their own think time between clicks."""

    def __init__(
        self,
        *,
        opening: Opening,
        units: dict[int, Unit],
        buyers: list[_Buyer],
        start: float,
        confirm_share: float,
        threads: int,
    ) -> None:
        self.opening = opening
        self.units = units
        self.buyers = buyers
        self.start = start
        self.confirm_share = confirm_share
        self.threads = max(1, threads)
        self.deadline = start + RUSH_DEADLINE_S
        self.cond = threading.Condition()
        self.heap: list[tuple[float, int, str, _Buyer, OpeningPick | None]] = []
        self.seq = itertools.count()
        self.inflight = 0
        self.counts: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.confirm_refused: Counter[str] = Counter()
        self.errors: list[str] = []

    def _push(self, events: Iterable[Event]) -> None:
        for due, kind, buyer, pick in events:
            heapq.heappush(self.heap, (due, next(self.seq), kind, buyer, pick))

    def _count(self, counter: Counter[str], key: str) -> None:
        with self.cond:
            counter[key] += 1

    def run(self) -> None:
        with self.cond:
            self._push(
                (self.start + b.rng.uniform(*FIRST_CLICK_S), "pick", b, None) for b in self.buyers
            )
        if self.threads == 1:
            self._loop()
            return
        workers = [
            threading.Thread(target=self._thread, name=f"rehearsal-{i}", daemon=True)
            for i in range(self.threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def _thread(self) -> None:
        try:
            self._loop()
        finally:
            connections.close_all()  # this thread's connections only

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.heap:
                    if self.inflight == 0:
                        return
                    self.cond.wait(0.05)
                due, _seq, kind, buyer, pick = heapq.heappop(self.heap)
                self.inflight += 1
            nexts: list[Event] = []
            try:
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if time.monotonic() > self.deadline:
                    buyer.answer = buyer.answer or "timeout"
                elif kind == "pick":
                    nexts = self._pick(buyer)
                elif pick is not None:
                    nexts = self._confirm(buyer, pick)
            except Exception as exc:  # one buyer's crash is a finding to report, not a stop
                with self.cond:
                    self.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                buyer.answer = "error"
            finally:
                with self.cond:
                    self._push(nexts)
                    self.inflight -= 1
                    self.cond.notify_all()

    def _think(self, buyer: _Buyer, span: tuple[float, float] = THINK_S) -> float:
        return time.monotonic() + buyer.rng.uniform(*span)

    def _candidate(self, buyer: _Buyer) -> int | None:
        """Favourites in the buyer's order; then what the phone page suggests after a miss
        (similar units still free); then any unit still free."""
        if buyer.current is not None:
            return buyer.current
        while buyer.favourites:
            unit_id = buyer.favourites.pop(0)
            if unit_id not in buyer.tried and unit_id in self.units:
                return unit_id
        if buyer.last is not None:
            for unit in similar_units(unit=buyer.last):
                if unit.pk not in buyer.tried:
                    return unit.pk
        free = list(
            Unit.objects.filter(opening_id=self.opening.pk, status=UnitStatus.AVAILABLE)
            .exclude(pk__in=buyer.tried)
            .order_by("pk")
            .values_list("pk", flat=True)[:20]
        )
        return buyer.rng.choice(free) if free else None

    def _pick(self, buyer: _Buyer) -> list[Event]:
        if buyer.holds >= buyer.wants:
            buyer.answer = buyer.answer or ("unit" if buyer.holds else "nothing_to_take")
            return []
        unit_id = self._candidate(buyer) if buyer.attempts < MAX_ATTEMPTS else None
        if unit_id is None:
            buyer.answer = "unit" if buyer.holds else "sold_out"
            if buyer.attempts >= MAX_ATTEMPTS and not buyer.holds:
                buyer.answer = "gave_up"
            return []
        buyer.current = unit_id
        buyer.attempts += 1
        unit = self.units[unit_id]
        self._count(self.counts, "tried")
        try:
            pick = opening_pick(
                actor=buyer.actor, opening=self.opening, pledge=buyer.pledge, unit=unit
            )
        except Busy as exc:
            self._count(self.refused, exc.code)
            return [(time.monotonic() + exc.retry_after, "pick", buyer, None)]
        except Conflict as exc:
            self._count(self.refused, exc.code)
            if exc.code == "opening_not_started":
                due = max(self._think(buyer), self.start)
                return [(due, "pick", buyer, None)]
            buyer.current = None
            if exc.code == "unit_not_available":
                buyer.tried.add(unit_id)
                buyer.last = unit
                return [(self._think(buyer), "pick", buyer, None)]
            buyer.answer = "unit" if buyer.holds else "refused"
            return []
        self._count(self.counts, "succeeded")
        buyer.current = None
        buyer.tried.add(unit_id)
        buyer.last = unit
        buyer.holds += 1
        out: list[Event] = []
        if buyer.rng.random() < self.confirm_share:
            out.append((self._think(buyer, CONFIRM_DELAY_S), "confirm", buyer, pick))
        else:
            self._count(self.counts, "left_to_expire")
        if buyer.holds < buyer.wants:
            out.append((self._think(buyer), "pick", buyer, None))
        else:
            buyer.answer = "unit"
        return out

    def _confirm(self, buyer: _Buyer, pick: OpeningPick) -> list[Event]:
        try:
            opening_confirm(actor=buyer.actor, pick=pick)
        except Busy as exc:
            self._count(self.confirm_refused, exc.code)
            return [(time.monotonic() + exc.retry_after, "confirm", buyer, pick)]
        except Conflict as exc:
            self._count(self.confirm_refused, exc.code)
            return []
        self._count(self.counts, "confirmed")
        return []


def _buyers(opening: Opening, limit: int | None, seed: int) -> list[_Buyer]:
    pledges = list(
        Pledge.objects.filter(admissions__opening=opening)
        .select_related("buyer")
        .order_by("number", "pk")
    )
    if limit is not None and limit < len(pledges):
        pledges = sorted(random.Random(seed).sample(pledges, limit), key=lambda p: (p.number, p.pk))
    favourites: dict[int, list[int]] = {}
    for pledge_id, unit_id in (
        Favourite.objects.filter(opening=opening)
        .order_by("pledge_id", "rank", "pk")
        .values_list("pledge_id", "unit_id")
    ):
        favourites.setdefault(pledge_id, []).append(unit_id)
    return [
        _Buyer(
            pledge=p,
            actor=p.buyer,
            wants=max(0, p.max_units - p.units_taken) if p.status == PledgeStatus.ACTIVE else 0,
            favourites=list(favourites.get(p.pk, [])),
            rng=random.Random(f"{seed}:{p.pk}"),
        )
        for p in pledges
    ]


def _units_sold_twice(opening: Opening) -> list[str]:
    """Units of the opening with two live holders, from the database: two held or
    confirmed picks, or two live subscriptions."""
    twice_picked = (
        OpeningPick.objects.filter(
            opening=opening, status__in=[PickStatus.HELD, PickStatus.CONFIRMED]
        )
        .values("unit_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("unit_id", flat=True)
    )
    twice_subscribed = (
        Subscription.objects.filter(unit__opening=opening, status__in=list(LIVE_SUBSCRIPTION))
        .values("unit_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("unit_id", flat=True)
    )
    ids = set(twice_picked) | set(twice_subscribed)
    return sorted(Unit.objects.filter(pk__in=ids).values_list("number", flat=True))


def rehearsal_simulate(
    *,
    opening_id: int,
    buyers: int | None = None,
    start_in: float = 5.0,
    confirm_share: float = 0.8,
    seed: int = 1,
    threads: int = 8,
) -> dict[str, Any]:
    """Run the opening on the current default database (the copy) and return the report.

    Writes to the database it runs on: the command calls it only inside a copy (see
    ``ensure_in_copy``); tests call it on their own test database."""
    opening = Opening.objects.select_related("project").get(pk=opening_id)
    start_at = timezone.now() + dt.timedelta(seconds=start_in)
    with transaction.atomic(durable=True):
        Opening.objects.filter(pk=opening.pk).update(start_at=start_at, end_at=None)
        audit_log(
            actor="opening rehearsal",
            action="inventory.opening.rehearse",
            target=opening,
            changes={"start_at": [opening.start_at, start_at], "end_at": [opening.end_at, None]},
        )
    opening_meta_forget(opening.pk)
    opening.start_at, opening.end_at = start_at, None
    start = time.monotonic() + start_in

    units = {u.pk: u for u in Unit.objects.filter(opening=opening).select_related("building")}
    people = _buyers(opening, buyers, seed)
    base_pick = OpeningPick.objects.aggregate(m=Max("pk"))["m"] or 0
    in_opening = Unit.objects.filter(opening=opening)
    available_at_start = in_opening.filter(status=UnitStatus.AVAILABLE).count()
    sold_before = in_opening.filter(status__in=SOLD).count()
    pledge_ids = [b.pledge.pk for b in people]
    # Subqueries, not IN lists of thousands of ids.
    admitted = Pledge.objects.filter(admissions__opening=opening)
    taken_before = dict(admitted.values_list("pk", "units_taken"))
    held_before = Counter(
        OpeningPick.objects.filter(opening=opening, status=PickStatus.HELD).values_list(
            "pledge_id", flat=True
        )
    )

    rush = _Rush(
        opening=opening,
        units=units,
        buyers=people,
        start=start,
        confirm_share=confirm_share,
        threads=threads,
    )
    rush.run()
    rush_seconds = max(0.0, time.monotonic() - start)

    ours = OpeningPick.objects.filter(opening=opening, pk__gt=base_pick)
    available_after_rush = in_opening.filter(status=UnitStatus.AVAILABLE).count()
    last_pick_at = ours.aggregate(m=Max("created_at"))["m"]
    sold_out_s = None
    if available_at_start and not available_after_rush and last_pick_at is not None:
        sold_out_s = round((last_pick_at - start_at).total_seconds(), 3)

    # Unconfirmed holds: let their deadline pass (a clock set past the latest expiry).
    released = 0
    latest = in_opening.filter(status=UnitStatus.HELD).aggregate(m=Max("hold_expires_at"))["m"]
    if latest is not None:
        later = latest + dt.timedelta(seconds=1)
        while n := holds_release_expired(now=later):
            released += n

    confirmed = ours.filter(status=PickStatus.CONFIRMED)
    picks_in_db = ours.count()
    sold_now = in_opening.filter(status__in=SOLD).count()
    heat = {k: n for k, n in favourite_heat(opening_id=opening.pk).items() if k in units}
    sold_ids = set(confirmed.values_list("unit_id", flat=True))
    picked_ids = set(ours.values_list("unit_id", flat=True))
    top = sorted(heat.items(), key=lambda kv: (-kv[1], units[kv[0]].number))[:10]
    heat_top = [
        {
            "unit": units[unit_id].number,
            "favourites": n,
            "outcome": (
                "sold"
                if unit_id in sold_ids
                else "released"
                if unit_id in picked_ids
                else "not_picked"
            ),
        }
        for unit_id, n in top
    ]
    wins = Counter(confirmed.values_list("pledge_id", flat=True))
    taken_after = dict(admitted.values_list("pk", "units_taken"))
    pledges_ok = all(
        taken_after[pid] == taken_before[pid] + wins[pid] - held_before[pid] for pid in pledge_ids
    )
    answers = Counter(b.answer or "unanswered" for b in people)
    sold_twice = _units_sold_twice(opening)
    invariants = {
        "no_unit_sold_twice": not sold_twice,
        "picks_match_database": rush.counts["succeeded"] == picks_in_db,
        "no_pick_before_start": not ours.filter(created_at__lt=start_at).exists(),
        "holds_resolved": not in_opening.filter(status=UnitStatus.HELD).exists()
        and not ours.filter(status=PickStatus.HELD).exists(),
        "units_match_picks": sold_now == sold_before + len(sold_ids)
        and not confirmed.exclude(unit__status__in=SOLD).exists(),
        "pledges_within_limits": pledges_ok,
        "every_buyer_answered": not rush.errors
        and all(b.answer not in ("", "timeout", "error") for b in people),
    }
    return {
        "opening": {"id": opening.pk, "name": opening.name, "project": opening.project.name},
        "start_at": timezone.localtime(start_at).isoformat(),
        "buyers": len(people),
        "buyers_requested": buyers,
        "threads": rush.threads,
        "units_released": len(units),
        "units_available_at_start": available_at_start,
        "units_sold": len(sold_ids),
        "units_sold_twice": len(sold_twice),
        "units_sold_twice_list": sold_twice,
        "picks_tried": rush.counts["tried"],
        "picks_succeeded": rush.counts["succeeded"],
        "picks_in_database": picks_in_db,
        "picks_refused": dict(sorted(rush.refused.items())),
        "holds_confirmed": rush.counts["confirmed"],
        "holds_left_to_expire": rush.counts["left_to_expire"],
        "confirmations_refused": dict(sorted(rush.confirm_refused.items())),
        "units_back_on_sale": released,
        "buyers_with_unit": len(wins),
        "buyers_without_unit": len(people) - len(wins),
        "followup_list": followup_list(opening=opening).count(),
        "answers": dict(sorted(answers.items())),
        "sold_out_seconds": sold_out_s,
        "units_left_after_rush": available_after_rush,
        "rush_seconds": round(rush_seconds, 3),
        "heat_top10": heat_top,
        "heat_top10_sold": sum(1 for row in heat_top if row["outcome"] == "sold"),
        "sold_outside_heat_top10": len(sold_ids - {unit_id for unit_id, _n in top}),
        "units_without_favourites": sum(1 for pk in units if pk not in heat),
        "units_nobody_picked": sorted(
            (u.number for pk, u in units.items() if pk not in picked_ids), key=_natural
        ),
        "errors": rush.errors[:20],
        "invariants": invariants,
        "ok": all(invariants.values()),
    }


def _natural(number: str) -> list[tuple[int, int, str]]:
    """Sort unit numbers as people read them: 1-201 before 1-1001."""
    return [
        (0, int(part), "") if digits else (1, 0, part)
        for digits, group in itertools.groupby(number, str.isdigit)
        for part in ["".join(group)]
    ]
