import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from homeclub.common.errors import DomainError
from homeclub.customers.imports import IMPORT_FIELDS
from homeclub.customers.imports_services import BATCH_SIZE, import_job_create, import_job_run
from homeclub.customers.models import ImportJob, ImportPolicy
from homeclub.org.models import OrgNode, User


class Command(BaseCommand):
    help = (
        "Import customers from a CSV (UTF-8, UTF-8 with BOM, GBK) or XLSX file with Chinese "
        "or English headers. Runs in this process with a progress bar; --resume JOB_ID "
        "continues a crashed import after its last committed batch."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", help="the .csv or .xlsx file")
        parser.add_argument("--project", help="code of the project customers are imported to")
        parser.add_argument(
            "--policy",
            choices=ImportPolicy.values,
            default=ImportPolicy.SKIP,
            help="what to do with customers that already exist (default: skip)",
        )
        parser.add_argument("--dry-run", action="store_true", help="check only, write nothing")
        parser.add_argument("--resume", type=int, metavar="JOB_ID", help="resume a crashed import")
        parser.add_argument("--user", help="import as this user (scope checks apply)")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
        parser.add_argument("--quiet", action="store_true")

    def _bar(self, done: int, total: int) -> None:
        if self.quiet:
            return
        total = max(total, done, 1)
        width = 40
        filled = width * done // total
        elapsed = max(time.monotonic() - self.started, 1e-6)
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,}"
            f" {done * 100 // total}% {done / elapsed:,.0f} rows/s"
        )
        sys.stderr.flush()

    def handle(self, *args: Any, **options: Any) -> None:
        self.quiet = options["quiet"]
        self.started = time.monotonic()
        try:
            if options["resume"]:
                job = ImportJob.objects.filter(pk=options["resume"]).first()
                if job is None:
                    raise CommandError(f"No import job {options['resume']}.")
                if job.state == ImportJob.State.DONE:
                    self.stdout.write(f"Import {job.pk} is already done.")
                    return
            else:
                job = self._create(options)
            job = import_job_run(
                job_id=job.pk, progress=self._bar, batch_size=options["batch_size"]
            )
        except DomainError as exc:
            raise CommandError(f"{exc.message} {exc.fields or ''}".strip()) from exc
        if not self.quiet:
            sys.stderr.write("\n")
        verb = "Dry run" if job.dry_run else "Import"
        self.stdout.write(
            f"{verb} {job.pk} {job.state}: {job.total_rows} rows, {job.created_count} created, "
            f"{job.updated_count} updated, {job.skipped_count} unchanged, "
            f"{job.duplicate_count} duplicates in file, {job.error_count} rows with errors "
            f"({time.monotonic() - self.started:.1f} s)"
        )

    def _create(self, options: dict[str, Any]) -> ImportJob:
        if not options["file"] or not options["project"]:
            raise CommandError("FILE and --project are required (or --resume JOB_ID).")
        path = Path(options["file"])
        if not path.exists():
            raise CommandError(f"{path} does not exist.")
        project = OrgNode.objects.filter(code=options["project"], kind="project").first()
        if project is None:
            raise CommandError(f"No project with code {options['project']!r}.")
        actor: Any = "command line"
        if options["user"]:
            actor = User.objects.filter(username=options["user"]).first()
            if actor is None:
                raise CommandError(f"No user {options['user']!r}.")
        with path.open("rb") as handle:
            job = import_job_create(
                actor=actor,
                project=project,
                upload=handle,
                file_name=path.name,
                policy=options["policy"],
            )
        mapped = ", ".join(f"{t}←{job.headers[i]}" for t, i in job.mapping.items())
        if not self.quiet:
            self.stdout.write(f"Import job {job.pk}: {mapped}")
        missing = [t for t in ("name", "mobile") if t not in job.mapping]
        if missing:
            known = ", ".join(str(k) for k in IMPORT_FIELDS)
            raise CommandError(f"No column found for {missing}; headers map to: {known}.")
        # The command runs the job itself: mark it started without queueing a task.
        ImportJob.objects.filter(pk=job.pk).update(
            state=ImportJob.State.CHECKING if options["dry_run"] else ImportJob.State.QUEUED,
            dry_run=options["dry_run"],
        )
        return job
