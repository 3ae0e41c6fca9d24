import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from homeclub.common.scheduler import registry, run_due


class Command(BaseCommand):
    help = "Enqueue periodic jobs, each once per period (safe to run twice)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="check once and exit (cron)")
        parser.add_argument("--interval", type=float, default=15.0, help="seconds between checks")
        parser.add_argument("--list", action="store_true", help="list the registered jobs")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            for name, job in sorted(registry().items()):
                self.stdout.write(f"{name}\tevery {job.every}\toffset {job.offset}")
            return
        while True:
            for name in run_due():
                self.stdout.write(f"enqueued {name}")
            if options["once"]:
                return
            time.sleep(options["interval"])
