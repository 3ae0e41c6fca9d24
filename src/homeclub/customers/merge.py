"""Merging two records of one person, and undoing it.

Every row of every app that points at the absorbed customer moves to the kept one. The
relations are discovered from ``Customer._meta`` (reverse relations, hidden ones and the
through tables of many-to-many fields included), so a domain added later is covered
without touching this file. A row whose move would break a unique constraint (both
records linked to the same project, the same tag …) is a duplicate: when its model says
``merge_drop_duplicates = True`` (or it is an automatic through table) it is saved in the
merge record and deleted; otherwise the merge is refused. ``customer_merge_undo`` moves
the recorded rows back, re-inserts the dropped ones and the absorbed record with their
original ids and stamps, and restores the kept record's fields.
"""

from typing import Any

from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import _jsonable, audit_log
from homeclub.common.errors import Conflict, ValidationFailed
from homeclub.common.locking import lock_rows
from homeclub.org.scoping import ensure_can_write

from .models import ContactSource, Customer, CustomerPhone, MergeRecord, TimelineEvent
from .timeline import timeline_append


def _cfield(name: str) -> Any:
    """A Customer field by name (typed loosely: only concrete fields are asked for)."""
    return Customer._meta.get_field(name)


# Fields of the kept record that a merge fills from the absorbed one when blank.
_FILLABLE = (
    "id_number",
    "gender",
    "birth_date",
    "native_place",
    "address",
    "email",
    "industry",
    "employer",
    "job_title",
    "personal_income_band",
    "household_income_band",
    "cars",
    "investments",
    "community",
    "home_layout",
    "owned_property",
    "other_real_estate",
    "character",
    "hobbies",
    "brands",
    "religion",
    "family_summary",
    "purchase_purpose",
    "wanted_layout",
    "wanted_floor",
    "payment_method",
    "purchase_qualification",
    "payment_ability",
    "decision_tendency",
    "life_stage",
    "owner",
)


def customer_relations() -> list[tuple[type[models.Model], models.ForeignKey[Any, Any]]]:
    """Every (model, foreign key) pointing at Customer, from any app."""
    out = []
    for rel in Customer._meta.get_fields(include_hidden=True):
        if not rel.auto_created or rel.concrete or rel.many_to_many:
            continue
        model = rel.related_model
        field = rel.field  # type: ignore[union-attr]
        if getattr(model, "merge_skip", False) or model is Customer:
            continue
        out.append((model, field))
    return out  # type: ignore[return-value]


def _key(model: type[models.Model], field: models.Field[Any, Any]) -> str:
    return f"{model._meta.label_lower}.{field.name}"


def _droppable(model: type[models.Model]) -> bool:
    return bool(model._meta.auto_created) or bool(getattr(model, "merge_drop_duplicates", False))


def _row_snapshot(obj: models.Model) -> dict[str, Any]:
    return {f.attname: _jsonable(getattr(obj, f.attname)) for f in obj._meta.concrete_fields}


def _restore_row(model: type[models.Model], data: dict[str, Any]) -> None:
    """Insert a row exactly as snapshotted (its id and its auto_now stamps included)."""
    values = {}
    for f in model._meta.concrete_fields:
        if f.attname in data:
            raw = data[f.attname]
            values[f.attname] = None if raw is None else f.to_python(raw)
    model._default_manager.bulk_create([model(**values)])
    stamps = {
        f.attname: values[f.attname]
        for f in model._meta.concrete_fields
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
    }
    if stamps:
        model._default_manager.filter(pk=values[model._meta.pk.attname]).update(**stamps)  # type: ignore[union-attr]


def _move(
    model: type[models.Model], field: models.ForeignKey[Any, Any], keep: Customer, absorb: Customer
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Move rows; returns (moved ids, snapshots of dropped duplicates)."""
    manager = model._default_manager
    rows = manager.filter(**{field.attname: absorb.pk})
    ids = list(rows.order_by("pk").values_list("pk", flat=True))
    if not ids:
        return [], []
    try:
        with transaction.atomic():
            manager.filter(pk__in=ids).update(**{field.attname: keep.pk})
        return ids, []
    except IntegrityError:
        pass
    # Some rows duplicate rows of the kept record: move one by one.
    moved: list[Any] = []
    dropped: list[dict[str, Any]] = []
    for obj in manager.filter(pk__in=ids).order_by("pk"):
        try:
            with transaction.atomic():
                manager.filter(pk=obj.pk).update(**{field.attname: keep.pk})
            moved.append(obj.pk)
        except IntegrityError as exc:
            if not _droppable(model):
                raise Conflict(
                    _("Both records hold a %(what)s that cannot be merged automatically.")
                    % {"what": model._meta.verbose_name},
                    code="merge_conflict",
                ) from exc
            dropped.append(_row_snapshot(obj))
            manager.filter(pk=obj.pk).delete()
    return moved, dropped


def customer_merge(*, actor: Any, keep: Customer, absorb: Customer) -> MergeRecord:
    """Fold ``absorb`` into ``keep``: every related row moves, blank fields of ``keep`` are
    filled from ``absorb``, and ``absorb`` is deleted. Both rows are locked (pk order) for
    the whole merge, so a concurrent edit either finishes first or waits and then finds
    the absorbed record gone. Audited; undone by :func:`customer_merge_undo`."""
    ensure_can_write(actor)
    if keep.pk == absorb.pk:
        raise ValidationFailed(fields={"absorb": [gettext("Pick two different customers.")]})
    with transaction.atomic(durable=True):
        locked = {c.pk: c for c in lock_rows(Customer.objects.filter(pk__in=[keep.pk, absorb.pk]))}
        if len(locked) != 2:
            raise Conflict(_("One of the records no longer exists."), code="merge_stale")
        keep, absorb = locked[keep.pk], locked[absorb.pk]
        if keep.erased_at or absorb.erased_at:
            raise Conflict(_("An erased record cannot be merged."), code="merge_erased")
        absorbed_snapshot = _row_snapshot(absorb)
        absorbed_snapshot["tags"] = []  # through rows are recorded as moved/dropped
        keep_before = _row_snapshot(keep)
        created: dict[str, list[Any]] = {}
        # The absorbed primary number must survive as one of keep's numbers.
        if not CustomerPhone.objects.filter(number=absorb.mobile).exists():
            phone = CustomerPhone.objects.create(
                customer=absorb,
                number=absorb.mobile,
                is_primary=True,
                verify_source=ContactSource.MERGE,
            )
            created[_key(CustomerPhone, CustomerPhone._meta.get_field("customer"))] = [phone.pk]  # type: ignore[arg-type]
        if not CustomerPhone.objects.filter(number=keep.mobile).exists():
            phone = CustomerPhone.objects.create(
                customer=keep,
                number=keep.mobile,
                is_primary=True,
                verify_source=ContactSource.MERGE,
            )
            created.setdefault(
                _key(CustomerPhone, CustomerPhone._meta.get_field("customer")), []
            ).append(phone.pk)  # type: ignore[arg-type]
        moved: dict[str, list[Any]] = {}
        dropped: dict[str, list[dict[str, Any]]] = {}
        for model, field in customer_relations():
            ids, gone = _move(model, field, keep, absorb)
            if ids:
                moved[_key(model, field)] = [_jsonable(i) for i in ids]
            if gone:
                dropped[_key(model, field)] = gone
        CustomerPhone.objects.filter(customer=keep, is_primary=True).exclude(
            number=keep.mobile
        ).update(is_primary=False)
        filled = []
        absorbed_id_number = absorb.id_number
        absorb_pk = absorb.pk
        Customer.objects.filter(pk=absorb.pk).delete()
        for name in _FILLABLE:
            attname = getattr(_cfield(name), "attname", name)
            if not getattr(keep, attname) and getattr(absorb, attname):
                value = absorbed_id_number if name == "id_number" else getattr(absorb, attname)
                setattr(keep, attname, value)
                filled.append(name)
        if filled:
            keep.save(update_fields=[*filled, "updated_at"])
        record = MergeRecord.objects.create(
            keep=keep,
            absorbed_id=absorb_pk,
            absorbed_name=absorb.name,
            absorbed_snapshot=absorbed_snapshot,
            keep_before={
                **{k: keep_before[getattr(_cfield(k), "attname", k)] for k in filled},
                "updated_at": keep_before["updated_at"],
            },
            moved=moved,
            dropped=dropped,
            created_rows=created,
            merged_by=actor if getattr(actor, "is_authenticated", False) else None,
            merged_at=timezone.now(),
        )
        audit_log(
            actor=actor,
            action="merge",
            target=keep,
            changes={
                "absorbed": absorb_pk,
                "moved": {k: len(v) for k, v in moved.items()},
                "dropped": {k: len(v) for k, v in dropped.items()},
                "filled": filled,
                "merge_record": record.pk,
            },
        )
        timeline_append(
            customer=keep,
            kind=TimelineEvent.Kind.MERGED,
            occurred_at=record.merged_at,
            summary=gettext("Record #%(id)s merged into this one") % {"id": absorb_pk},
            actor=actor,
            data={"merge_record": record.pk, "absorbed": absorb_pk},
        )
    return record


def _relation_by_key() -> dict[str, tuple[type[models.Model], models.ForeignKey[Any, Any]]]:
    return {_key(m, f): (m, f) for m, f in customer_relations()}


def customer_merge_undo(*, actor: Any, record: MergeRecord) -> Customer:
    """Put both records back as they were before the merge: the absorbed row with its id
    and stamps, the rows that moved (those still on the kept record), the dropped
    duplicates, and the kept record's filled fields. Rows created on the kept record after
    the merge stay there. Refused when already undone."""
    ensure_can_write(actor)
    with transaction.atomic(durable=True):
        lock_rows(Customer.objects.filter(pk=record.keep_id))
        now = timezone.now()
        if not MergeRecord.objects.filter(pk=record.pk, undone_at__isnull=True).update(
            undone_at=now
        ):
            raise Conflict(_("This merge has already been undone."), code="merge_undone")
        record.refresh_from_db()
        keep = Customer.objects.get(pk=record.keep_id)
        restore = {k: v for k, v in record.keep_before.items() if k != "updated_at"}
        for name, value in restore.items():
            field = _cfield(name)
            setattr(
                keep,
                getattr(field, "attname", name),
                None if value is None else field.to_python(value),
            )
        if restore:
            keep.save(update_fields=list(restore))
        if "updated_at" in record.keep_before:
            Customer.objects.filter(pk=keep.pk).update(
                updated_at=_cfield("updated_at").to_python(record.keep_before["updated_at"])
            )
        snap = dict(record.absorbed_snapshot)
        snap.pop("tags", None)
        try:
            with transaction.atomic():
                _restore_row(Customer, snap)
        except IntegrityError as exc:
            raise Conflict(
                _("The absorbed record's number or ID number now belongs to another record."),
                code="merge_undo_conflict",
            ) from exc
        absorbed_pk = record.absorbed_id
        relations = _relation_by_key()
        for key, ids in record.moved.items():
            if key not in relations:
                continue
            model, field = relations[key]
            model._default_manager.filter(pk__in=ids, **{field.attname: keep.pk}).update(
                **{field.attname: absorbed_pk}
            )
        for key, rows in record.dropped.items():
            if key not in relations:
                continue
            model, _field = relations[key]
            for row in rows:
                _restore_row(model, row)
        for key, ids in record.created_rows.items():
            if key in relations:
                relations[key][0]._default_manager.filter(pk__in=ids).delete()
        CustomerPhone.objects.filter(customer=keep, number=keep.mobile).update(is_primary=True)
        CustomerPhone.objects.filter(customer_id=absorbed_pk, number=snap.get("mobile")).update(
            is_primary=True
        )
        audit_log(
            actor=actor,
            action="merge_undo",
            target=keep,
            changes={"absorbed": absorbed_pk, "merge_record": record.pk},
        )
        timeline_append(
            customer=keep,
            kind=TimelineEvent.Kind.MERGE_UNDONE,
            occurred_at=now,
            summary=gettext("Merge with record #%(id)s undone") % {"id": absorbed_pk},
            actor=actor,
            data={"merge_record": record.pk},
        )
    return Customer.objects.get(pk=absorbed_pk)


def merge_preview(*, keep: Customer, absorb: Customer) -> dict[str, Any]:
    """What a merge would move, per relation, and which blank fields it would fill."""
    counts = {}
    for model, field in customer_relations():
        n = model._default_manager.filter(**{field.attname: absorb.pk}).count()
        if n:
            counts[str(model._meta.verbose_name)] = n
    filled = [
        str(_cfield(name).verbose_name)
        for name in _FILLABLE
        if not getattr(keep, getattr(_cfield(name), "attname", name))
        and getattr(absorb, getattr(_cfield(name), "attname", name))
    ]
    return {"moves": counts, "fills": filled}
