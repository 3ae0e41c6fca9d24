"""Console pages of the archive that live in this app: the customer import (upload →
mapping and policy → dry run → confirm → live progress → result with the error report),
and the 360 page's household and tag panels, loaded and changed in place by htmx."""

import datetime as dt
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
from .models import CalendarKind, ImportJob, ImportPolicy, Relation
from .selectors import customer_get, customer_lookup_phone
from .selectors_households import household_for, tag_names, tags_of
from .services import (
    customer_tag_add,
    customer_tag_remove,
    family_member_add,
    family_member_get,
    family_member_remove,
    family_member_update,
    household_link,
    household_member_get,
    household_member_remove,
    household_member_update,
)

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


def _staff_only(request: AuthedRequest) -> None:
    if scope_of(request.user).external:
        raise Http404()


def _checked(request: AuthedRequest, name: str) -> bool:
    return request.POST.get(name) in ("1", "on", "true")


def _small_int(raw: Any, digits: int = 5) -> int | None:
    text = (raw or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= digits else None


def _household_context(request: AuthedRequest, customer: Any, error: str = "") -> dict[str, Any]:
    scope = scope_of(request.user)
    return {
        "customer": customer,
        "household": household_for(viewer=request.user, customer=customer),
        "relations": [c for c in Relation.choices if c[0] != Relation.SELF],
        "calendars": CalendarKind.choices,
        "can_write": scope.can_write,
        "error": error,
    }


def _household_action(request: AuthedRequest, customer: Any) -> None:
    """One change to the household from the panel's forms (``action`` says which)."""
    action = request.POST.get("action")
    actor = request.user
    if action == "member_add":
        other, _exists = customer_lookup_phone(viewer=actor, phone=request.POST.get("phone", ""))
        if other is None:
            raise DomainError(gettext("No customer you may see holds this number."))
        household_link(
            actor=actor,
            customer=customer,
            other=other,
            relation=request.POST.get("relation", ""),
            is_decider=_checked(request, "is_decider"),
            is_payer=_checked(request, "is_payer"),
        )
    elif action == "member_update":
        household_member_update(
            actor=actor,
            member=household_member_get(customer=customer, pk=request.POST.get("member")),
            is_decider=_checked(request, "is_decider"),
            is_payer=_checked(request, "is_payer"),
        )
    elif action == "member_remove":
        household_member_remove(
            actor=actor,
            member=household_member_get(customer=customer, pk=request.POST.get("member")),
        )
    elif action == "family_add":
        calendar = request.POST.get("birthday_calendar") or CalendarKind.SOLAR
        birth_date = None
        raw_date = (request.POST.get("birth_date") or "").strip()
        if raw_date and calendar == CalendarKind.SOLAR:
            try:
                birth_date = dt.date.fromisoformat(raw_date)
            except ValueError as exc:
                raise DomainError(gettext("Enter a valid date.")) from exc
        family_member_add(
            actor=actor,
            customer=customer,
            name=request.POST.get("name", ""),
            relation=request.POST.get("relation", ""),
            birthday_calendar=calendar,
            birth_date=birth_date,
            lunar_birth_month=_small_int(request.POST.get("lunar_birth_month")),
            lunar_birth_day=_small_int(request.POST.get("lunar_birth_day")),
            lunar_birth_leap=_checked(request, "lunar_birth_leap"),
            is_decider=_checked(request, "is_decider"),
            is_payer=_checked(request, "is_payer"),
        )
    elif action == "family_update":
        family_member_update(
            actor=actor,
            member=family_member_get(customer=customer, pk=request.POST.get("member")),
            is_decider=_checked(request, "is_decider"),
            is_payer=_checked(request, "is_payer"),
        )
    elif action == "family_remove":
        family_member_remove(
            actor=actor,
            member=family_member_get(customer=customer, pk=request.POST.get("member")),
        )
    else:
        raise DomainError()


def _domain_error_text(exc: DomainError) -> str:
    details = " ".join(" ".join(v) for v in (exc.fields or {}).values())
    return f"{exc.message} {details}".strip() if details else str(exc.message)


@login_required
def customer_household_panel(request: AuthedRequest, pk: int) -> HttpResponse:
    """The 360 page's household: other customers in the household, relatives who are not
    customers, who decides and who pays, each with their next birthday. POST changes it
    (htmx swaps the re-rendered panel in place; the error, if any, shown in it)."""
    _staff_only(request)
    customer = customer_get(viewer=request.user, pk=pk)
    error = ""
    if request.method == "POST":
        try:
            _household_action(request, customer)
        except DomainError as exc:
            error = _domain_error_text(exc)
        if not request.htmx:  # type: ignore[attr-defined]
            if error:
                messages.error(request, error)
            return redirect("console:customer_detail", pk=pk)
    return render(
        request,
        "console/customers/_household_panel.html",
        _household_context(request, customer, error),
    )


@login_required
def customer_tags_panel(request: AuthedRequest, pk: int) -> HttpResponse:
    """The 360 page's tag editor: add a tag by name (created on first use), remove one."""
    _staff_only(request)
    customer = customer_get(viewer=request.user, pk=pk)
    error = ""
    if request.method == "POST":
        try:
            if request.POST.get("action") == "remove":
                tag_id = _small_int(request.POST.get("tag"), digits=18) or 0
                customer_tag_remove(actor=request.user, customer=customer, tag_id=tag_id)
            else:
                customer_tag_add(
                    actor=request.user, customer=customer, name=request.POST.get("name", "")
                )
        except DomainError as exc:
            error = _domain_error_text(exc)
        if not request.htmx:  # type: ignore[attr-defined]
            if error:
                messages.error(request, error)
            return redirect("console:customer_detail", pk=pk)
    return render(
        request,
        "console/customers/_tags_panel.html",
        {
            "customer": customer,
            "tags": list(tags_of(customer)),
            "suggestions": tag_names() if scope_of(request.user).can_write else [],
            "can_write": scope_of(request.user).can_write,
            "error": error,
        },
    )
