"""Console pages of the customer import: upload → mapping and policy → dry run →
confirm → live progress → result with the error report."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext

from homeclub.common.errors import DomainError
from homeclub.common.http import AuthedRequest
from homeclub.org.scoping import projects_for, scope_of

from .imports import IMPORT_FIELDS
from .imports_services import (
    import_error_report_xlsx,
    import_errors,
    import_job_configure,
    import_job_create,
    import_job_get,
    import_job_list,
    import_job_start,
)
from .models import ImportJob, ImportPolicy

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _writer_only(request: AuthedRequest) -> None:
    scope = scope_of(request.user)
    if scope.external or not scope.can_write:
        raise Http404()


@login_required
def customer_import_view(request: AuthedRequest) -> HttpResponse:
    _writer_only(request)
    projects = projects_for(request.user)
    errors: dict[str, Any] = {}
    if request.method == "POST":
        upload = request.FILES.get("file")
        project = projects.filter(pk=request.POST.get("project") or 0).first()
        if upload is None:
            errors["file"] = gettext("Choose a file to upload.")
        if project is None:
            errors["project"] = gettext("Choose a project.")
        if not errors and upload is not None and project is not None:
            try:
                job = import_job_create(
                    actor=request.user,
                    project=project,
                    upload=upload,
                    file_name=upload.name or "import.csv",
                    policy=request.POST.get("policy") or ImportPolicy.SKIP,
                )
            except DomainError as exc:
                errors["file"] = str(exc.message)
            else:
                return redirect("console:customer_import_detail", pk=job.pk)
    return render(
        request,
        "console/customers/import.html",
        {
            "projects": projects,
            "policies": ImportPolicy.choices,
            "errors": errors,
            "jobs": import_job_list(viewer=request.user)[:10],
        },
    )


def _detail_context(job: ImportJob) -> dict[str, Any]:
    mapping = {k: int(v) for k, v in job.mapping.items()}
    return {
        "job": job,
        "fields": [(key, label, mapping.get(key)) for key, label in IMPORT_FIELDS.items()],
        "headers": list(enumerate(job.headers)),
        "policies": ImportPolicy.choices,
        "errors": import_errors(job)[:20],
    }


@login_required
def customer_import_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    _writer_only(request)
    job = import_job_get(viewer=request.user, pk=pk)
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "check":
                mapping = {key: request.POST.get(f"map_{key}", "") for key in IMPORT_FIELDS}
                import_job_configure(
                    actor=request.user,
                    job=job,
                    mapping=mapping,
                    policy=request.POST.get("policy", ""),
                )
                import_job_start(actor=request.user, job=job, dry_run=True)
            elif action == "confirm":
                import_job_start(actor=request.user, job=job, dry_run=False)
        except DomainError as exc:
            detail = "; ".join(
                f"{IMPORT_FIELDS.get(k, k)}: {' '.join(v)}" for k, v in (exc.fields or {}).items()
            )
            messages.error(request, f"{exc.message} {detail}".strip())
        return redirect("console:customer_import_detail", pk=job.pk)
    return render(request, "console/customers/import_detail.html", _detail_context(job))


@login_required
def customer_import_progress(request: AuthedRequest, pk: int) -> HttpResponse:
    _writer_only(request)
    job = import_job_get(viewer=request.user, pk=pk)
    response = render(request, "console/customers/import_progress.html", {"job": job})
    if not job.is_active:
        response["HX-Refresh"] = "true"  # show the result page
    return response


@login_required
def customer_import_errors(request: AuthedRequest, pk: int) -> HttpResponse:
    _writer_only(request)
    job = import_job_get(viewer=request.user, pk=pk)
    body = import_error_report_xlsx(viewer=request.user, job=job)
    response = HttpResponse(body, content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.xlsx"'
    return response
