import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from homeclub.common.errors import DomainError
from homeclub.demo.dataset import GROUP_CODE
from homeclub.demo.logins import login_table
from homeclub.demo.seeding import (
    DEFAULT_CUSTOMERS,
    DEFAULT_SEED,
    DemoAlreadyLoaded,
    demo_exists,
    demo_seed,
)

PROGRESS_EVERY = 100_000
ALREADY_LOADED = (
    f"Demo data is already loaded (group {GROUP_CODE!r} exists); nothing changed. "
    "Use --if-empty to skip quietly, or start from an empty database."
)


class Command(BaseCommand):
    help = (
        "Load the deterministic demo dataset: the org tree, staff for every role and "
        "N customers. Refuses to load twice; --if-empty makes a second call a quick no-op."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--customers",
            type=int,
            default=DEFAULT_CUSTOMERS,
            help=f"number of customers (default {DEFAULT_CUSTOMERS}; millions work)",
        )
        parser.add_argument(
            "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="do nothing (successfully) when the demo data is already loaded",
        )
        parser.add_argument("--quiet", action="store_true", help="print nothing but errors")

    def handle(self, *args: Any, **options: Any) -> None:
        quiet: bool = options["quiet"]
        count: int = options["customers"]
        if count < 0:
            raise CommandError("--customers must not be negative.")
        if demo_exists():
            if not options["if_empty"]:
                raise CommandError(ALREADY_LOADED)
            if not quiet:
                self.stdout.write(f"Demo data already loaded (group {GROUP_CODE!r}); kept as is.")
            return
        started = time.monotonic()
        reported = 0

        def progress(done: int, total: int) -> None:
            nonlocal reported
            if quiet or done // PROGRESS_EVERY == reported // PROGRESS_EVERY:
                return
            reported = done
            rate = done / max(time.monotonic() - started, 1e-6)
            self.stdout.write(f"  customers {done:,}/{total:,}  ({rate:,.0f} rows/s)")

        if not quiet:
            self.stdout.write(f"Loading demo data: {count:,} customers, seed {options['seed']} …")
        try:
            ctx = demo_seed(seed=options["seed"], customers=count, progress=progress)
        except DemoAlreadyLoaded as exc:
            raise CommandError(ALREADY_LOADED) from exc
        except DomainError as exc:
            detail = f" {exc.fields}" if exc.fields else ""
            raise CommandError(f"Demo data not loaded, nothing changed: {exc}{detail}") from exc
        except ValueError as exc:
            raise CommandError(f"Demo data not loaded, nothing changed: {exc}") from exc
        if quiet:
            return
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"Loaded {len(ctx.nodes)} org nodes, {len(ctx.users)} staff accounts and "
            f"{ctx.customers:,} customers in {elapsed:.1f} s."
        )
        self.stdout.write(login_table())
