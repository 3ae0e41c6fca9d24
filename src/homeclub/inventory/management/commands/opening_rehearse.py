"""``manage.py opening_rehearse OPENING_ID``: try an online opening the day before, on a
copy of its data (see ``homeclub.inventory.rehearsal``)."""

import argparse
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from homeclub.common.errors import DomainError
from homeclub.inventory.rehearsal import (
    ensure_in_copy,
    rehearsal_check,
    rehearsal_copy,
    rehearsal_run_child,
    rehearsal_simulate,
    report_lines,
)


class Command(BaseCommand):
    help = (
        "Rehearse an online opening on a copy of its data: simulated buyers (one per "
        "admitted pledge) pick at the start, favourites first, a share of the holds is "
        "confirmed and the rest expire; prints what sold, what was refused and why, who got "
        "nothing, and checks that no unit was sold twice. The real opening is never touched."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("opening_id", type=int)
        parser.add_argument(
            "--buyers", type=int, default=None, help="simulated buyers (default: every pledge)"
        )
        parser.add_argument(
            "--start-in", type=float, default=5.0, help="seconds until the start (default 5)"
        )
        parser.add_argument(
            "--confirm-share",
            type=float,
            default=0.8,
            help="share of holds confirmed; the rest expire (default 0.8)",
        )
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--threads", type=int, default=8, help="picks in flight at once (default 8)"
        )
        parser.add_argument(
            "--force", action="store_true", help="rehearse an opening already started or closed"
        )
        parser.add_argument("--keep", action="store_true", help="keep the copy afterwards")
        parser.add_argument("--json", action="store_true", help="print one JSON line")
        # Internal: the child process that runs inside the copy.
        parser.add_argument("--simulate", action="store_true", help=argparse.SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        self._validate(options)
        opening_id = int(options["opening_id"])
        sim = {
            "buyers": options["buyers"],
            "start_in": options["start_in"],
            "confirm_share": options["confirm_share"],
            "seed": options["seed"],
            "threads": options["threads"],
        }
        try:
            if options["simulate"]:
                ensure_in_copy()
                report = rehearsal_simulate(opening_id=opening_id, **sim)
                self.stdout.write(json.dumps(report, ensure_ascii=False))
                return
            opening, notes = rehearsal_check(opening_id=opening_id, force=options["force"])
            child_args = [
                f"--{name.replace('_', '-')}={value}"
                for name, value in sim.items()
                if value is not None
            ]
            say = self.stderr.write if options["verbosity"] >= 1 else None
            with rehearsal_copy(opening=opening, keep=options["keep"], progress=say) as copy:
                if say is not None:
                    say(_("Simulating the opening…"))
                out = rehearsal_run_child(copy=copy, opening_id=opening_id, args=child_args)
        except DomainError as exc:
            raise CommandError(str(exc.message)) from exc
        lines = [line for line in out.splitlines() if line.strip()]
        if not lines:
            raise CommandError(_("The simulation printed no report."))
        report = json.loads(lines[-1])
        report["notes"] = notes
        report["forced"] = bool(notes)
        report["copy"] = {
            "vendor": copy.vendor,
            "name": copy.name,
            "kept": copy.kept,
            "rows": copy.rows,
        }
        if options["json"]:
            self.stdout.write(json.dumps(report, ensure_ascii=False))
        else:
            for line in report_lines(report):
                self.stdout.write(line)
        if not report["ok"]:
            failed = ", ".join(k for k, ok in report["invariants"].items() if not ok)
            raise CommandError(
                _("The rehearsal broke invariants: %(names)s.") % {"names": failed},
                returncode=3,
            )

    def _validate(self, options: dict[str, Any]) -> None:
        if options["buyers"] is not None and options["buyers"] < 1:
            raise CommandError(_("--buyers must be at least 1."))
        if not 0 <= options["start_in"] <= 3600:
            raise CommandError(_("--start-in must be between 0 and 3600 seconds."))
        if not 0 <= options["confirm_share"] <= 1:
            raise CommandError(_("--confirm-share must be between 0 and 1."))
        if not 1 <= options["threads"] <= 64:
            raise CommandError(_("--threads must be between 1 and 64."))
