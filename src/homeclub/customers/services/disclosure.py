"""Personal data leaving the archive: the audited reveal and the XLSX export."""

import io
from typing import Any

import xlsxwriter
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import Forbidden
from homeclub.common.models import AuditEvent
from homeclub.common.phones import national
from homeclub.org.roles import EXPORT_ROW_LIMITS, REVEAL_ROLES
from homeclub.org.scoping import scope_of

from ..models import (
    Customer,
)
from ..selectors import SENSITIVE_FIELDS, customer_list, id_number_for, phone_for, sensitive_for


def customer_reveal(
    *, actor: Any, customer: Customer, reason: str = "", sensitive: bool = False
) -> dict[str, Any]:
    """Full phone and ID number (and, with ``sensitive``, the other sensitive fields) for a
    role allowed to reveal them; every reveal audited with the fields it showed."""
    if scope_of(actor).role not in REVEAL_ROLES:
        raise Forbidden(_("Your role may not reveal personal data."), code="reveal_forbidden")
    fields = [
        "mobile",
        "id_number",
        *(f for f in SENSITIVE_FIELDS if sensitive and f != "id_number"),
    ]
    with transaction.atomic():
        audit_log(
            actor=actor,
            action=AuditEvent.Action.REVEAL,
            target=customer,
            changes={"fields": fields, "reason": reason},
        )
    out: dict[str, Any] = {
        "mobile": national(customer.mobile) if customer.erased_at is None else "",
        "id_number": customer.id_number or "",
    }
    if sensitive:
        out["sensitive"] = sensitive_for(actor, customer, revealed=True)
    return out


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
