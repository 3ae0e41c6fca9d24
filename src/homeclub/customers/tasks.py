"""Background jobs of the customer archive."""

from django_tasks import task

from .imports_services import import_job_run


@task()
def import_job_task(job_id: int) -> int:
    """Run (or resume) an import or a dry run; idempotent: a finished job is left as is,
    a crashed one resumes after its last committed batch."""
    job = import_job_run(job_id=job_id)
    return job.rows_done
