"""The rehearsal's report for people, in the active language."""

import datetime as dt
from typing import Any

from django.utils.translation import gettext as _

from .check import local_time


def _reason(code: str) -> str:
    labels = {
        "unit_not_available": _("unit already taken"),
        "opening_not_started": _("before the start (server clock)"),
        "pledge_limit_reached": _("pledge limit reached"),
        "pledge_inactive": _("pledge no longer active"),
        "pledge_not_admitted": _("pledge not admitted"),
        "busy": _("busy, retried"),
        "hold_expired": _("confirmation too late"),
        "opening_ended": _("opening ended"),
    }
    return labels.get(code, code)


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report for people, in the active language."""
    outcome = {
        "sold": _("sold"),
        "released": _("picked, not confirmed"),
        "not_picked": _("not picked"),
    }
    lines = [
        _("Rehearsal of “%(name)s” (%(project)s) on a copy of its data")
        % {"name": report["opening"]["name"], "project": report["opening"]["project"]},
        *report.get("notes", []),
    ]
    copy = report.get("copy")
    if copy:
        kept = _("kept") if copy["kept"] else _("dropped")
        lines.append(_("Copy: %(name)s (%(state)s)") % {"name": copy["name"], "state": kept})
    start = dt.datetime.fromisoformat(report["start_at"])
    requested = report.get("buyers_requested")
    if requested is not None and requested > report["buyers"]:
        lines.append(
            _("Only %(n)d pledges are admitted: %(n)d buyers simulated, not %(requested)d.")
            % {"n": report["buyers"], "requested": requested}
        )
    lines += [
        _("Start in the copy: %(start)s; %(buyers)d simulated buyers, %(threads)d at a time")
        % {"start": local_time(start), "buyers": report["buyers"], "threads": report["threads"]},
        _("Units released: %(n)d (available at the start: %(available)d)")
        % {"n": report["units_released"], "available": report["units_available_at_start"]},
        _("Units sold: %(n)d") % {"n": report["units_sold"]},
        _("Units sold twice: %(n)d") % {"n": report["units_sold_twice"]},
        _("Picks tried: %(tried)d, succeeded: %(ok)d, refused: %(refused)d")
        % {
            "tried": report["picks_tried"],
            "ok": report["picks_succeeded"],
            "refused": sum(report["picks_refused"].values()),
        },
    ]
    for code, n in report["picks_refused"].items():
        lines.append(f"  - {_reason(code)}: {n}")
    lines.append(
        _(
            "Holds confirmed: %(confirmed)d, left to expire: %(expired)d, units back on "
            "sale: %(back)d"
        )
        % {
            "confirmed": report["holds_confirmed"],
            "expired": report["holds_left_to_expire"],
            "back": report["units_back_on_sale"],
        }
    )
    for code, n in report["confirmations_refused"].items():
        lines.append(f"  - {_reason(code)}: {n}")
    lines.append(
        _("Buyers who got nothing: %(n)d; follow-up list: %(followup)d pledges")
        % {"n": report["buyers_without_unit"], "followup": report["followup_list"]}
    )
    if report["sold_out_seconds"] is not None:
        lines.append(_("Time to sell out: %(s).2f s") % {"s": report["sold_out_seconds"]})
    else:
        lines.append(
            _("Not sold out: %(n)d units still free after the rush (%(s).2f s)")
            % {"n": report["units_left_after_rush"], "s": report["rush_seconds"]}
        )
    lines.append(
        _("Favourite heat map, top 10 (%(sold)d of them sold; %(other)d units sold outside it):")
        % {"sold": report["heat_top10_sold"], "other": report["sold_outside_heat_top10"]}
    )
    for row in report["heat_top10"]:
        lines.append(f"  {row['unit']}  ♥{row['favourites']}  {outcome[row['outcome']]}")
    if not report["heat_top10"]:
        lines.append("  " + _("(no favourites marked)"))
    nobody = report["units_nobody_picked"]
    shown = "、".join(nobody[:50]) + ("…" if len(nobody) > 50 else "") if nobody else "—"
    lines.append(
        _("Units nobody wanted (never picked): %(n)d %(units)s")
        % {"n": len(nobody), "units": shown}
    )
    lines.append(
        _("Units no buyer marked as a favourite: %(n)d") % {"n": report["units_without_favourites"]}
    )
    failed = [name for name, ok in report["invariants"].items() if not ok]
    if failed:
        lines.append(_("INVARIANTS BROKEN: %(names)s") % {"names": ", ".join(failed)})
        lines += [f"  ! {error}" for error in report.get("errors", [])]
    else:
        lines.append(_("All invariants hold."))
    return lines
