"""Writes to the customer archive. Each one is audited in its own transaction."""

import datetime as dt
import io
from typing import Any

import xlsxwriter
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log, diff, snapshot
from homeclub.common.errors import Conflict, Forbidden, ValidationFailed
from homeclub.common.idnumbers import parse_id_number
from homeclub.common.models import AuditEvent
from homeclub.common.phones import national, normalize_phone
from homeclub.org.models import OrgNode, User
from homeclub.org.roles import EXPORT_ROW_LIMITS, REVEAL_ROLES
from homeclub.org.scoping import ensure_can_write, ensure_project_in_scope, scope_of

from .models import Customer
from .selectors import customer_list, id_number_for, phone_for

AUDITED_FIELDS = ("name", "gender", "mobile", "id_number", "birth_date", "project", "owner", "note")


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    """Normalise and validate the fields present in ``data``; all errors at once."""
    errors: dict[str, list[str]] = {}
    out = dict(data)
    if "name" in data:
        name = (data.get("name") or "").strip()
        if not name:
            errors["name"] = [gettext("This field is required.")]
        out["name"] = name
    if "mobile" in data:
        try:
            out["mobile"] = normalize_phone(data.get("mobile") or "")
        except ValidationFailed as exc:
            errors["mobile"] = [str(exc.message)]
    if "id_number" in data:
        raw = (data.get("id_number") or "").strip()
        if raw:
            try:
                info = parse_id_number(raw)
                out["id_number"] = info.number
                out.setdefault("birth_date", info.birth_date)
                out.setdefault("gender", info.gender)
                if not out.get("birth_date"):
                    out["birth_date"] = info.birth_date
                if not out.get("gender"):
                    out["gender"] = info.gender
            except ValidationFailed as exc:
                errors["id_number"] = [str(exc.message)]
        else:
            out["id_number"] = None
    if errors:
        raise ValidationFailed(fields=errors)
    return out


def _check_unique(mobile: str | None, id_number: str | None, exclude_pk: int | None) -> None:
    qs = Customer.objects.all()
    if exclude_pk:
        qs = qs.exclude(pk=exclude_pk)
    fields: dict[str, list[str]] = {}
    if mobile and qs.filter(mobile=mobile).exists():
        fields["mobile"] = [gettext("A customer with this phone already exists.")]
    if id_number and qs.filter(id_number=id_number).exists():
        fields["id_number"] = [gettext("A customer with this ID number already exists.")]
    if fields:
        raise Conflict(_("This customer already exists."), code="duplicate_customer", fields=fields)


def customer_create(
    *,
    actor: Any,
    name: str,
    mobile: str,
    project: OrgNode,
    owner: User | None = None,
    gender: str = "",
    id_number: str = "",
    birth_date: dt.date | None = None,
    note: str = "",
) -> Customer:
    """One customer per mobile and per ID number (unique constraints back the check)."""
    ensure_can_write(actor)
    ensure_project_in_scope(actor, project.pk)
    data = _clean(
        {
            "name": name,
            "mobile": mobile,
            "id_number": id_number,
            "gender": gender,
            "birth_date": birth_date,
        }
    )
    if owner is None and scope_of(actor).own_only:
        owner = actor
    _check_unique(data["mobile"], data.get("id_number"), None)
    try:
        with transaction.atomic():
            customer = Customer.objects.create(
                name=data["name"],
                mobile=data["mobile"],
                id_number=data.get("id_number"),
                gender=data.get("gender") or "",
                birth_date=data.get("birth_date"),
                project=project,
                owner=owner,
                note=note,
            )
            audit_log(
                actor=actor,
                action=AuditEvent.Action.CREATE,
                target=customer,
                changes=snapshot(customer, AUDITED_FIELDS),
            )
    except IntegrityError as exc:
        # Lost a race with a concurrent create of the same person.
        raise Conflict(_("This customer already exists."), code="duplicate_customer") from exc
    return customer


def customer_update(*, actor: Any, customer: Customer, **changes: Any) -> Customer:
    ensure_can_write(actor)
    allowed = {"name", "mobile", "id_number", "gender", "birth_date", "note", "owner", "project"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationFailed(
            fields={k: [gettext("This field cannot be changed.")] for k in unknown}
        )
    data = _clean(changes)
    if "project" in data:
        ensure_project_in_scope(actor, data["project"].pk)
    _check_unique(data.get("mobile"), data.get("id_number"), customer.pk)
    before = snapshot(customer, AUDITED_FIELDS)
    for key, value in data.items():
        setattr(customer, key, value)
    after = snapshot(customer, AUDITED_FIELDS)
    changed = diff(before, after)
    if not changed:
        return customer
    try:
        with transaction.atomic():
            customer.save()
            audit_log(
                actor=actor, action=AuditEvent.Action.UPDATE, target=customer, changes=changed
            )
    except IntegrityError as exc:
        raise Conflict(_("This customer already exists."), code="duplicate_customer") from exc
    return customer


def customer_delete(*, actor: Any, customer: Customer) -> None:
    ensure_can_write(actor)
    with transaction.atomic():
        audit_log(
            actor=actor,
            action=AuditEvent.Action.DELETE,
            target=customer,
            changes=snapshot(customer, ("name", "project", "owner")),
        )
        customer.delete()


def customer_reveal(*, actor: Any, customer: Customer, reason: str = "") -> dict[str, str]:
    """Full phone and ID number for a role allowed to reveal them; every reveal audited."""
    if scope_of(actor).role not in REVEAL_ROLES:
        raise Forbidden(_("Your role may not reveal personal data."), code="reveal_forbidden")
    with transaction.atomic():
        audit_log(
            actor=actor,
            action=AuditEvent.Action.REVEAL,
            target=customer,
            changes={"fields": ["mobile", "id_number"], "reason": reason},
        )
    return {"mobile": national(customer.mobile), "id_number": customer.id_number or ""}


EXPORT_COLUMNS = (
    (_("Name"), "name"),
    (_("Gender"), "gender"),
    (_("Mobile"), "mobile"),
    (_("ID number"), "id_number"),
    (_("Project"), "project"),
    (_("Consultant"), "owner"),
    (_("Created at"), "created_at"),
)


def customers_export_xlsx(
    *, actor: Any, q: str = "", project_id: int | None = None
) -> tuple[bytes, int]:
    """The viewer's filtered list as XLSX, masked as the viewer sees it; audited.

    Refused (not truncated) beyond the role's row limit, so nobody gets a partial list
    believing it complete."""
    limit = EXPORT_ROW_LIMITS.get(scope_of(actor).role, 0)
    if limit <= 0:
        raise Forbidden(_("Your role may not export data."), code="export_forbidden")
    qs = customer_list(viewer=actor, q=q, project_id=project_id)
    count = qs.count()
    if count > limit:
        raise Forbidden(
            _("The export has %(count)s rows; your role may export at most %(limit)s.")
            % {"count": count, "limit": limit},
            code="export_too_large",
        )
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "remove_timezone": True})
    sheet = book.add_worksheet(gettext("Customers"))
    header = book.add_format({"bold": True, "bg_color": "#DDEBF7"})
    sheet.write_row(0, 0, [str(label) for label, _key in EXPORT_COLUMNS], header)
    tz = timezone.get_current_timezone()
    gender_labels = dict(Customer.Gender.choices)
    for row, c in enumerate(qs.iterator(chunk_size=2000), start=1):
        sheet.write_row(
            row,
            0,
            [
                c.name,
                str(gender_labels.get(c.gender, "")),
                phone_for(actor, c),
                id_number_for(actor, c),
                c.project.name,
                str(c.owner) if c.owner else "",
                c.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            ],
        )
    sheet.set_column(0, len(EXPORT_COLUMNS) - 1, 18)
    book.close()
    with transaction.atomic():
        audit_log(
            actor=actor,
            action=AuditEvent.Action.EXPORT,
            target_type="customers.customer",
            target_repr=gettext("Customer list"),
            changes={"rows": count, "q": q, "project_id": project_id},
        )
    return buffer.getvalue(), count
