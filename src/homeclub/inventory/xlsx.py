"""XLSX import and export of units (fixed column order; the first row is a header)."""

import io
from dataclasses import dataclass, field
from typing import Any

import openpyxl
import xlsxwriter
from django.db import transaction
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log
from homeclub.common.errors import Conflict, ValidationFailed
from homeclub.common.models import AuditEvent
from homeclub.org.models import OrgNode

from .live import version_bump_on_commit
from .models import Building, Unit
from .services import _clean_unit, _writer_in

COLUMNS = (
    ("building", _("Building")),
    ("number", _("Unit number")),
    ("floor", _("Floor")),
    ("layout", _("Layout")),
    ("gross_area", _("Gross area (m²)")),
    ("net_area", _("Net area (m²)")),
    ("orientation", _("Orientation")),
    ("list_price", _("List price")),
    ("unit_price", _("Unit price (per m²)")),
)
MAX_ROWS = 20_000


@dataclass
class ImportResult:
    created: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"row", "field", "message"}


def units_export_xlsx(*, actor: Any, project: OrgNode) -> bytes:
    """Every unit of the project with its state; the export is audited."""
    _writer_in(actor, project.pk)
    rows = list(
        Unit.objects.filter(project=project)
        .select_related("building")
        .order_by("building__sort", "building__name", "-floor", "number")
    )
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True})
    sheet = book.add_worksheet()
    headers = [str(label) for _name, label in COLUMNS] + [gettext("Status")]
    sheet.write_row(0, 0, headers)
    for i, u in enumerate(rows, start=1):
        sheet.write_row(
            i,
            0,
            [
                u.building.name,
                u.number,
                u.floor,
                u.layout,
                str(u.gross_area),
                str(u.net_area),
                u.orientation,
                str(u.list_price),
                str(u.unit_price),
                u.get_status_display(),
            ],
        )
    book.close()
    with transaction.atomic():
        audit_log(
            actor=actor,
            action=AuditEvent.Action.EXPORT,
            target=project,
            changes={"what": "inventory.units", "rows": len(rows)},
        )
    return buf.getvalue()


def units_import_xlsx(*, actor: Any, project: OrgNode, data: bytes) -> ImportResult:
    """New units (unreleased) from a sheet. Bad rows are reported with their row number
    and field and skipped; good rows are created together in one transaction."""
    _writer_in(actor, project.pk)
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a file that is not XLSX
        raise ValidationFailed(fields={"file": [gettext("This is not an XLSX file.")]}) from exc
    sheet = book.worksheets[0]
    result = ImportResult()
    existing = set(Unit.objects.filter(project=project).values_list("number", flat=True))
    seen: set[str] = set()
    good: list[tuple[str, dict[str, Any]]] = []
    for index, row in enumerate(sheet.iter_rows(min_row=2, values_only=True), start=2):
        if index > MAX_ROWS + 1:
            raise ValidationFailed(fields={"file": [gettext("Too many rows.")]})
        if row is None or all(v in (None, "") for v in row):
            continue
        raw = dict(zip((name for name, _label in COLUMNS), row, strict=False))
        building = str(raw.pop("building") or "").strip()
        errors: dict[str, list[str]] = {}
        if not building:
            errors["building"] = [gettext("This field is required.")]
        try:
            clean = _clean_unit(raw)
        except ValidationFailed as exc:
            errors.update(exc.fields)
            clean = {}
        number = clean.get("number", "")
        if number and (number in existing or number in seen):
            errors["number"] = [gettext("A unit with this number already exists.")]
        if errors:
            for name, messages in errors.items():
                for message in messages:
                    result.errors.append({"row": index, "field": name, "message": message})
            continue
        seen.add(number)
        good.append((building, clean))
    if good:
        with transaction.atomic(durable=True):
            buildings = {b.name: b for b in Building.objects.filter(project=project)}
            units = []
            for name, clean in good:
                if name not in buildings:
                    buildings[name] = Building.objects.create(project=project, name=name)
                units.append(Unit(project=project, building=buildings[name], **clean))
            try:
                Unit.objects.bulk_create(units)
            except Exception as exc:  # a concurrent import created the same number
                raise Conflict(
                    _("A unit with this number already exists."), code="duplicate_unit"
                ) from exc
            audit_log(
                actor=actor,
                action="inventory.unit.import",
                target=project,
                changes={"created": len(units), "errors": len(result.errors)},
            )
            version_bump_on_commit(project.pk)
        result.created = len(good)
    return result
