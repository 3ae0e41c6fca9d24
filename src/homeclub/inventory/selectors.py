"""Reads of inventory: scoped to the viewer, and the cached live snapshots."""

import datetime as dt
import json
from collections import defaultdict
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from homeclub.common.errors import NotFound
from homeclub.org.models import OrgNode
from homeclub.org.scoping import projects_for

from .live import BODY_TTL, project_version
from .memo import memo_forget, memo_get
from .models import (
    Building,
    Opening,
    PriceListItem,
    Subscription,
    SubscriptionStatus,
    Unit,
    UnitStatus,
)

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
META_MEMO_SECONDS = 1.0
SOLD = (UnitStatus.SUBSCRIBED, UnitStatus.SIGNED)


def project_for(*, viewer: Any, project_id: int) -> OrgNode:
    """A project whose sales control the viewer may see, else NotFound. Units are shared
    by everyone working the project (consultants included); external roles see none."""
    project = projects_for(viewer).filter(pk=project_id).first()
    if project is None:
        raise NotFound(code="project_not_found")
    return project


def unit_list(
    *, viewer: Any, project_id: int, status: str = "", building_id: int | None = None
) -> QuerySet[Unit]:
    project = project_for(viewer=viewer, project_id=project_id)
    qs = Unit.objects.filter(project=project).select_related("building")
    if status:
        qs = qs.filter(status=status)
    if building_id:
        qs = qs.filter(building_id=building_id)
    return qs.order_by("building__sort", "building__name", "-floor", "number")


def unit_price_current(*, unit: Unit, at: dt.datetime) -> tuple[Decimal, PriceListItem | None]:
    """The unit's list price in the latest price list version in effect at ``at``; the
    unit's own list price if no version names it."""
    item = (
        PriceListItem.objects.filter(unit=unit, price_list__effective_at__lte=at)
        .select_related("price_list")
        .order_by("-price_list__effective_at", "-price_list__version")
        .first()
    )
    if item is None:
        return unit.list_price, None
    return item.list_price, item


def current_prices(*, project_id: int, at: dt.datetime) -> dict[int, tuple[Decimal, Decimal]]:
    """unit id → (list price, unit price) from the versions in effect, in one query."""
    out: dict[int, tuple[Decimal, Decimal]] = {}
    rows = (
        PriceListItem.objects.filter(
            price_list__project_id=project_id, price_list__effective_at__lte=at
        )
        .order_by("price_list__effective_at", "price_list__version")
        .values_list("unit_id", "list_price", "unit_price")
    )
    for unit_id, list_price, unit_price in rows:
        out[unit_id] = (list_price, unit_price)  # later versions overwrite earlier ones
    return out


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def board_build(*, project_id: int, now: dt.datetime | None = None) -> dict[str, Any]:
    """Everything the sales-control board shows, in a handful of queries."""
    now = now or timezone.now()
    prices = current_prices(project_id=project_id, at=now)
    buildings = list(Building.objects.filter(project_id=project_id).order_by("sort", "name"))
    units: list[dict[str, Any]] = [
        dict(row)
        for row in Unit.objects.filter(project_id=project_id)
        .order_by("-floor", "number")
        .values(
            "id",
            "building_id",
            "number",
            "floor",
            "layout",
            "gross_area",
            "status",
            "list_price",
            "unit_price",
        )
    ]
    by_building: dict[int, dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    counts: dict[str, int] = defaultdict(int)
    per_building: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    per_layout: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for u in units:
        lp, up = prices.get(u["id"], (u["list_price"], u["unit_price"]))
        u["list_price"], u["unit_price"] = lp, up
        by_building[u["building_id"]][u["floor"]].append(u)
        counts[u["status"]] += 1
        if u["status"] != UnitStatus.UNRELEASED:
            per_building[u["building_id"]][1] += 1
            per_layout[u["layout"] or "-"][1] += 1
            if u["status"] in SOLD:
                per_building[u["building_id"]][0] += 1
                per_layout[u["layout"] or "-"][0] += 1
    local = now.astimezone(LOCAL_TZ)
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    deals = list(
        Subscription.objects.filter(
            project_id=project_id,
            subscribed_at__gte=day_start,
            status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.SIGNED],
        )
        .select_related("unit", "consultant")
        .order_by("-subscribed_at")[:50]
    )
    released = sum(v for k, v in counts.items() if k != UnitStatus.UNRELEASED)
    sold = sum(counts[s] for s in SOLD)
    return {
        "buildings": [
            {
                "id": b.pk,
                "name": b.name,
                "floors": [
                    {"floor": f, "units": sorted(us, key=lambda x: x["number"])}
                    for f, us in sorted(by_building[b.pk].items(), reverse=True)
                ],
                "sold": per_building[b.pk][0],
                "released": per_building[b.pk][1],
                "rate": _pct(*per_building[b.pk]),
            }
            for b in buildings
        ],
        "layouts": [
            {"layout": k, "sold": v[0], "released": v[1], "rate": _pct(*v)}
            for k, v in sorted(per_layout.items())
        ],
        "counts": dict(counts),
        "released": released,
        "sold": sold,
        "rate": _pct(sold, released),
        "deals": [
            {
                "unit": d.unit.number,
                "time": d.subscribed_at.astimezone(LOCAL_TZ).strftime("%H:%M"),
                "price": d.agreed_price,
                "consultant": str(d.consultant) if d.consultant else "",
                "status": d.status,
            }
            for d in deals
        ],
        "day": local.date().isoformat(),
    }


def board_snapshot(*, project_id: int) -> tuple[int, dict[str, Any]]:
    """(version, board data): rebuilt only when the project's version moved."""
    version = project_version(project_id)
    key = f"inventory:board:{project_id}:{version}"
    data = cache.get(key)
    if data is None:
        data = board_build(project_id=project_id)
        cache.set(key, data, BODY_TTL)
    return version, data


def _meta_key(opening_id: int) -> str:
    return f"inventory:opening:{opening_id}"


def opening_meta(opening_id: int) -> dict[str, Any]:
    """What a pick and a poll need of the opening — project, times, confirmation minutes,
    its units' numbers — cached, so neither queries for it. Every service that changes an
    opening forgets it (``opening_meta_forget``) after commit; a worker's memory may
    keep it ``META_MEMO_SECONDS`` longer."""
    return memo_get(_meta_key(opening_id), META_MEMO_SECONDS, lambda: _opening_meta(opening_id))


def _opening_meta(opening_id: int) -> dict[str, Any]:
    key = _meta_key(opening_id)
    meta = cache.get(key)
    if meta is None:
        row = (
            Opening.objects.filter(pk=opening_id)
            .values("project_id", "start_at", "end_at", "hold_minutes")
            .first()
        )
        if row is None:
            raise NotFound(code="opening_not_found")
        meta = {
            "project_id": row["project_id"],
            "start_at": row["start_at"].isoformat(),
            "start_ts": row["start_at"].timestamp(),
            "end_ts": row["end_at"].timestamp() if row["end_at"] else None,
            "hold_minutes": row["hold_minutes"],
            "unit_numbers": dict(
                Unit.objects.filter(opening_id=opening_id).values_list("pk", "number")
            ),
        }
        cache.set(key, meta, 60)
    return meta


def opening_meta_forget(opening_id: int) -> None:
    cache.delete(_meta_key(opening_id))
    memo_forget(_meta_key(opening_id))


def opening_snapshot(*, opening_id: int) -> tuple[int, bytes]:
    """(version, JSON body) of the opening's availability: one cache read per poll, one
    query per change of the project's units."""
    meta = opening_meta(opening_id)
    version = project_version(meta["project_id"])
    key = f"inventory:opening:{opening_id}:{version}"
    body = cache.get(key)
    if body is None:
        rows = (
            Unit.objects.filter(opening_id=opening_id)
            .order_by("pk")
            .values_list("pk", "number", "status")
        )
        body = json.dumps(
            {
                "opening_id": opening_id,
                "version": version,
                "start_at": meta["start_at"],
                "units": [{"id": pk, "number": n, "status": s} for pk, n, s in rows],
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        cache.set(key, body, BODY_TTL)
    return version, body
