"""Writes to the customer archive. Each one is audited in the transaction of its change.

Merging lives in ``merge.py``, consent and PIPL rights in ``privacy.py``."""

import datetime as dt
import io
from typing import Any

import xlsxwriter
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log, diff, snapshot
from homeclub.common.errors import Busy, Conflict, Forbidden, NotFound, ValidationFailed
from homeclub.common.idnumbers import parse_id_number
from homeclub.common.locking import lock_rows
from homeclub.common.masking import mask_phone
from homeclub.common.models import AuditEvent
from homeclub.common.phones import national, normalize_phone, parse_phone
from homeclub.org.models import OrgNode, User
from homeclub.org.roles import EXPORT_ROW_LIMITS, REVEAL_ROLES
from homeclub.org.scoping import ensure_can_write, ensure_project_in_scope, scope_of

from .models import (
    ContactSource,
    Customer,
    CustomerPhone,
    CustomerProject,
    FamilyMember,
    Household,
    HouseholdMember,
    Relation,
    Tag,
    TimelineEvent,
)
from .rules import name_initials, name_pinyin
from .selectors import SENSITIVE_FIELDS, customer_list, id_number_for, phone_for, sensitive_for
from .timeline import timeline_append


def _cfield(name: str) -> Any:
    """A Customer field by name (typed loosely: only concrete fields are asked for)."""
    return Customer._meta.get_field(name)


AUDITED_FIELDS = ("name", "gender", "mobile", "id_number", "birth_date", "project", "owner", "note")

# Archive fields a service may set besides the identity ones; validated by ``_clean``.
PROFILE_FIELDS: tuple[str, ...] = (
    "birthday_calendar",
    "lunar_birth_month",
    "lunar_birth_day",
    "lunar_birth_leap",
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
    "home_area",
    "is_our_owner",
    "owned_property",
    "other_real_estate",
    "character",
    "hobbies",
    "brands",
    "religion",
    "family_summary",
    "purchase_purpose",
    "wanted_layout",
    "wanted_area_min",
    "wanted_area_max",
    "wanted_floor",
    "unit_price_min",
    "unit_price_max",
    "total_price_min",
    "total_price_max",
    "payment_method",
    "purchase_qualification",
    "stage",
    "retention_class",
    "loyalty",
    "payment_ability",
    "decision_tendency",
    "life_stage",
)
EDITABLE_FIELDS = frozenset(
    {"name", "mobile", "id_number", "gender", "birth_date", "note", "owner", "project"}
    | set(PROFILE_FIELDS)
)


def _duplicate(fields: dict[str, list[str]] | None = None) -> Conflict:
    return Conflict(_("This customer already exists."), code="duplicate_customer", fields=fields)


def _clean_profile(data: dict[str, Any], out: dict[str, Any], errors: dict[str, list[str]]) -> None:
    for name in PROFILE_FIELDS:
        if name not in data:
            continue
        field = _cfield(name)
        value = data[name]
        if value in (None, "") and not field.null and not field.blank:
            value = field.get_default()  # e.g. an untouched select of the stage
        elif value is None and not field.null:
            value = field.get_default()
        if isinstance(value, str):
            value = value.strip()
        try:
            out[name] = field.clean(value, None)  # type: ignore[attr-defined]
        except DjangoValidationError as exc:
            errors[name] = [str(m) for m in exc.messages]
    month, day = out.get("lunar_birth_month"), out.get("lunar_birth_day")
    if month is not None and not 1 <= month <= 12:
        errors["lunar_birth_month"] = [gettext("Enter a lunar month from 1 to 12.")]
    if day is not None and not 1 <= day <= 30:
        errors["lunar_birth_day"] = [gettext("Enter a lunar day from 1 to 30.")]
    for low, high in (
        ("wanted_area_min", "wanted_area_max"),
        ("unit_price_min", "unit_price_max"),
        ("total_price_min", "total_price_max"),
    ):
        a, b = out.get(low), out.get(high)
        if a is not None and b is not None and a > b:
            errors[high] = [gettext("The upper bound is below the lower bound.")]


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    """Normalise and validate the fields present in ``data``; all errors at once."""
    errors: dict[str, list[str]] = {}
    out = dict(data)
    if "name" in data:
        name = (data.get("name") or "").strip()
        if not name:
            errors["name"] = [gettext("This field is required.")]
        elif len(name) > 60:
            errors["name"] = [gettext("Enter at most 60 characters.")]
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
                if not out.get("birth_date"):
                    out["birth_date"] = info.birth_date
                if not out.get("gender"):
                    out["gender"] = info.gender
            except ValidationFailed as exc:
                errors["id_number"] = [str(exc.message)]
        else:
            out["id_number"] = None
    if "gender" in data and (out.get("gender") or "") not in Customer.Gender.values:
        errors["gender"] = [gettext("Select a valid choice.")]
    _clean_profile(data, out, errors)
    if errors:
        raise ValidationFailed(fields=errors)
    return out


def _redacted_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """Sensitive values never enter the audit log: it records that they changed."""
    return {k: (["***", "***"] if k in SENSITIVE_FIELDS else v) for k, v in changes.items()}


def _find_existing(mobile: str | None, id_number: str | None) -> Customer | None:
    if mobile:
        # Two indexed lookups, not one OR across a subquery: PostgreSQL plans that OR as a
        # sequential scan of the whole archive (~80 ms at 1M customers).
        pk = (
            CustomerPhone.objects.filter(number=mobile)
            .values_list("customer_id", flat=True)
            .first()
        )
        found = (
            Customer.objects.filter(pk=pk).first()
            if pk is not None
            else Customer.objects.filter(mobile=mobile).first()
        )
        if found is not None:
            return found
    if id_number:
        return Customer.objects.filter(id_number=id_number).first()
    return None


def _check_unique(mobile: str | None, id_number: str | None, exclude_pk: int | None) -> None:
    qs = Customer.objects.all()
    phones = CustomerPhone.objects.all()
    if exclude_pk:
        qs = qs.exclude(pk=exclude_pk)
        phones = phones.exclude(customer_id=exclude_pk)
    fields: dict[str, list[str]] = {}
    if mobile and (qs.filter(mobile=mobile).exists() or phones.filter(number=mobile).exists()):
        fields["mobile"] = [gettext("A customer with this phone already exists.")]
    if id_number and qs.filter(id_number=id_number).exists():
        fields["id_number"] = [gettext("A customer with this ID number already exists.")]
    if fields:
        raise _duplicate(fields)


def _link_project(customer: Customer, project: OrgNode, owner: User | None) -> CustomerProject:
    link, _created = CustomerProject.objects.get_or_create(
        customer=customer,
        project=project,
        defaults={"owner": owner, "first_seen_at": timezone.now()},
    )
    return link


def _insert(
    *, actor: Any, data: dict[str, Any], project: OrgNode, owner: User | None, source: str
) -> Customer:
    """The rows of a new customer; the caller holds the transaction."""
    profile = {k: data[k] for k in PROFILE_FIELDS if k in data}
    customer = Customer.objects.create(
        name=data["name"],
        name_pinyin=name_pinyin(data["name"]),
        name_initials=name_initials(data["name"]),
        mobile=data["mobile"],
        id_number=data.get("id_number"),
        gender=data.get("gender") or "",
        birth_date=data.get("birth_date"),
        project=project,
        owner=owner,
        note=data.get("note") or "",
        **profile,
    )
    phone = parse_phone(data["mobile"])
    CustomerPhone.objects.create(
        customer=customer,
        number=phone.e164,
        kind=CustomerPhone.Kind.MOBILE if phone.is_mobile else CustomerPhone.Kind.LANDLINE,
        is_primary=True,
        last_verified_at=timezone.now(),
        verify_source=source,
    )
    _link_project(customer, project, owner)
    audit_log(
        actor=actor,
        action=AuditEvent.Action.CREATE,
        target=customer,
        changes=snapshot(customer, AUDITED_FIELDS),
    )
    timeline_append(
        customer=customer,
        kind=TimelineEvent.Kind.CREATED,
        occurred_at=timezone.now(),
        summary=gettext("Customer record created in %(project)s") % {"project": project.name},
        actor=actor,
        source=source,
    )
    return customer


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
    source: str = ContactSource.CONSOLE,
    **profile: Any,
) -> Customer:
    """One customer per number (any of their numbers) and per ID number: the unique
    constraints on ``CustomerPhone.number``, ``Customer.mobile`` and ``Customer.id_number``
    decide; a duplicate is a ``duplicate_customer`` Conflict."""
    ensure_can_write(actor)
    ensure_project_in_scope(actor, project.pk)
    unknown = set(profile) - set(PROFILE_FIELDS)
    if unknown:
        raise ValidationFailed(fields={k: [gettext("Unknown field.")] for k in sorted(unknown)})
    data = _clean(
        {
            "name": name,
            "mobile": mobile,
            "id_number": id_number,
            "gender": gender,
            "birth_date": birth_date,
            "note": note,
            **profile,
        }
    )
    if owner is None and scope_of(actor).own_only:
        owner = actor
    _check_unique(data["mobile"], data.get("id_number"), None)
    try:
        with transaction.atomic():
            customer = _insert(actor=actor, data=data, project=project, owner=owner, source=source)
    except IntegrityError as exc:
        # Lost a race with a concurrent create of the same person.
        raise _duplicate() from exc
    return customer


def customer_find_or_create(
    *,
    actor: Any,
    name: str,
    mobile: str,
    project: OrgNode,
    owner: User | None = None,
    id_number: str = "",
    source: str = ContactSource.CONSOLE,
    assign_owner: bool = True,
    **fields: Any,
) -> tuple[Customer, bool]:
    """The customer holding this number (any of theirs, any input format) or ID number,
    else a new one: ``(customer, created)``. Two concurrent calls for one person make one
    record — the loser's INSERT hits the unique constraint and it reads the winner's row.

    An existing customer is linked to ``project`` if not yet (with ``owner`` unless the
    actor is a consultant: ownership of someone else's customer is decided by assignment,
    not by typing their number). Nothing else of the existing record changes.

    ``assign_owner=False`` leaves the consultant empty whoever the actor is: the sales
    office's reception decides it by assignment right after.
    """
    ensure_can_write(actor)
    ensure_project_in_scope(actor, project.pk)
    data = _clean({"name": name, "mobile": mobile, "id_number": id_number, **fields})
    own_only = scope_of(actor).own_only
    for _attempt in range(3):
        existing = _find_existing(data["mobile"], data.get("id_number"))
        if existing is not None:
            with transaction.atomic():
                link_owner = None if own_only or not assign_owner else owner
                if not CustomerProject.objects.filter(customer=existing, project=project).exists():
                    try:
                        with transaction.atomic():
                            _link_project(existing, project, link_owner)
                    except IntegrityError:
                        pass  # a concurrent call linked it
            return existing, False
        try:
            with transaction.atomic():
                customer = _insert(
                    actor=actor,
                    data=data,
                    project=project,
                    owner=(
                        None
                        if not assign_owner
                        else owner
                        if owner is not None or not own_only
                        else actor
                    ),
                    source=source,
                )
            return customer, True
        except IntegrityError:
            continue  # a concurrent call created the person: find it on the next pass
    raise Busy()


def customer_update(*, actor: Any, customer: Customer, **changes: Any) -> Customer:
    """Change archive fields. Changing the primary number moves the primary phone row; the
    unique constraints keep one number to one person."""
    ensure_can_write(actor)
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise ValidationFailed(
            fields={k: [gettext("This field cannot be changed.")] for k in unknown}
        )
    data = _clean(changes)
    if "project" in data:
        ensure_project_in_scope(actor, data["project"].pk)
    _check_unique(data.get("mobile"), data.get("id_number"), customer.pk)
    watched = (*AUDITED_FIELDS, *PROFILE_FIELDS)
    try:
        with transaction.atomic():
            # Lock and re-read: a concurrent merge may have absorbed this record, and a
            # stale save() must never resurrect it.
            rows = lock_rows(Customer.objects.filter(pk=customer.pk))
            if not rows:
                raise NotFound(_("This customer no longer exists (merged or deleted)."))
            current = rows[0]
            before = snapshot(current, watched)
            old_mobile = current.mobile
            for key, value in data.items():
                setattr(current, key, value)
            changed = diff(before, snapshot(current, watched))
            if not changed:
                return customer
            current.name_pinyin = name_pinyin(current.name)
            current.name_initials = name_initials(current.name)
            current.save(force_update=True)
            if current.mobile != old_mobile:
                _move_primary(current, old_mobile)
            if "project" in changed:
                _link_project(current, current.project, current.owner)
            if "owner" in changed or "project" in changed:
                # The archive's consultant is the home project's consultant: keep the two
                # in step (scoping and the sales office read the link).
                CustomerProject.objects.filter(
                    customer=current, project_id=current.project_id
                ).update(owner_id=current.owner_id, updated_at=timezone.now())
            audit_log(
                actor=actor,
                action=AuditEvent.Action.UPDATE,
                target=current,
                changes=_redacted_changes(changed),
            )
            labels = sorted(str(_cfield(k).verbose_name) for k in changed)
            timeline_append(
                customer=current,
                kind=TimelineEvent.Kind.UPDATED,
                occurred_at=timezone.now(),
                summary=gettext("Archive updated: %(fields)s") % {"fields": ", ".join(labels)},
                actor=actor,
                data={"fields": sorted(changed)},
            )
    except IntegrityError as exc:
        raise _duplicate() from exc
    for f in Customer._meta.concrete_fields:
        setattr(customer, f.attname, getattr(current, f.attname))
    return customer


def _move_primary(customer: Customer, old_mobile: str) -> None:
    phone = parse_phone(customer.mobile)
    CustomerPhone.objects.filter(customer=customer, is_primary=True).update(is_primary=False)
    existing = CustomerPhone.objects.filter(customer=customer, number=customer.mobile).first()
    if existing is not None:
        CustomerPhone.objects.filter(pk=existing.pk).update(is_primary=True)
    else:
        CustomerPhone.objects.create(
            customer=customer,
            number=phone.e164,
            kind=CustomerPhone.Kind.MOBILE if phone.is_mobile else CustomerPhone.Kind.LANDLINE,
            is_primary=True,
            last_verified_at=timezone.now(),
            verify_source=ContactSource.CONSOLE,
        )


def customer_phone_add(
    *, actor: Any, customer: Customer, number: str, source: str = ContactSource.CONSOLE
) -> CustomerPhone:
    """Another number of the customer; a number held by anybody else is a Conflict."""
    ensure_can_write(actor)
    phone = parse_phone(number)
    if Customer.objects.filter(mobile=phone.e164).exclude(pk=customer.pk).exists():
        raise _duplicate({"number": [gettext("A customer with this phone already exists.")]})
    try:
        with transaction.atomic():
            row = CustomerPhone.objects.create(
                customer=customer,
                number=phone.e164,
                kind=CustomerPhone.Kind.MOBILE if phone.is_mobile else CustomerPhone.Kind.LANDLINE,
                last_verified_at=timezone.now(),
                verify_source=source,
            )
            audit_log(
                actor=actor,
                action=AuditEvent.Action.CREATE,
                target=row,
                target_repr=mask_phone(row.number),
                changes={"customer": customer.pk, "phone": row.number},
            )
    except IntegrityError as exc:
        raise _duplicate(
            {"number": [gettext("A customer with this phone already exists.")]}
        ) from exc
    return row


CONTACT_ITEMS = ("phone", "email", "address")


def contact_verify(
    *,
    actor: Any,
    customer: Customer,
    item: str,
    phone: CustomerPhone | None = None,
    source: str = ContactSource.CALL,
    verified_at: dt.datetime | None = None,
) -> Customer:
    """Record that a contact item was confirmed with the person (by ``source``)."""
    ensure_can_write(actor)
    if item not in CONTACT_ITEMS:
        raise ValidationFailed(fields={"item": [gettext("Select a valid choice.")]})
    if source not in ContactSource.values:
        raise ValidationFailed(fields={"source": [gettext("Select a valid choice.")]})
    when = verified_at or timezone.now()
    with transaction.atomic():
        if item == "phone":
            rows = CustomerPhone.objects.filter(customer=customer)
            if phone is not None:
                rows = rows.filter(pk=phone.pk)
            if not rows.update(last_verified_at=when, verify_source=source):
                raise NotFound(code="phone_not_found")
        elif item == "email":
            Customer.objects.filter(pk=customer.pk).update(
                email_verified_at=when, email_source=source
            )
            customer.email_verified_at, customer.email_source = when, source
        else:
            Customer.objects.filter(pk=customer.pk).update(
                address_verified_at=when, address_source=source
            )
            customer.address_verified_at, customer.address_source = when, source
        audit_log(
            actor=actor,
            action=AuditEvent.Action.UPDATE,
            target=customer,
            changes={"verified": item, "source": source},
        )
        timeline_append(
            customer=customer,
            kind=TimelineEvent.Kind.CONTACT_VERIFIED,
            occurred_at=when,
            summary=gettext("Contact verified: %(item)s") % {"item": item},
            actor=actor,
            source=source,
        )
    return customer


def customer_tags_set(*, actor: Any, customer: Customer, names: list[str]) -> list[Tag]:
    """Replace the customer's tags (created on first use)."""
    ensure_can_write(actor)
    clean = sorted({n.strip()[:40] for n in names if n and n.strip()})
    with transaction.atomic():
        tags = []
        for n in clean:
            tag, _c = Tag.objects.get_or_create(name=n)
            tags.append(tag)
        before = sorted(customer.tags.values_list("name", flat=True))
        customer.tags.set(tags)
        if before != clean:
            audit_log(
                actor=actor,
                action=AuditEvent.Action.UPDATE,
                target=customer,
                changes={"tags": [before, clean]},
            )
    return tags


def household_link(
    *,
    actor: Any,
    customer: Customer,
    other: Customer,
    relation: str,
    is_decider: bool = False,
    is_payer: bool = False,
) -> HouseholdMember:
    """Put ``other`` in ``customer``'s household (made on first use) with its relation to
    ``customer``. A customer is in at most one household (unique constraint)."""
    ensure_can_write(actor)
    if relation not in Relation.values or customer.pk == other.pk:
        raise ValidationFailed(fields={"relation": [gettext("Select a valid choice.")]})
    try:
        with transaction.atomic():
            mine = (
                HouseholdMember.objects.filter(customer=customer)
                .select_related("household")
                .first()
            )
            if mine is None:
                household = Household.objects.create(name=customer.name)
                mine = HouseholdMember.objects.create(
                    household=household, customer=customer, relation=Relation.SELF
                )
            member = HouseholdMember.objects.create(
                household=mine.household,
                customer=other,
                relation=relation,
                is_decider=is_decider,
                is_payer=is_payer,
            )
            audit_log(
                actor=actor,
                action=AuditEvent.Action.CREATE,
                target=member,
                changes={
                    "household": mine.household_id,
                    "customer": other.pk,
                    "relation": relation,
                },
            )
    except IntegrityError as exc:
        raise Conflict(
            _("This customer already belongs to a household."), code="household_conflict"
        ) from exc
    return member


def family_member_add(
    *,
    actor: Any,
    customer: Customer,
    name: str,
    relation: str,
    birthday_calendar: str = "solar",
    birth_date: dt.date | None = None,
    lunar_birth_month: int | None = None,
    lunar_birth_day: int | None = None,
    lunar_birth_leap: bool = False,
    school_entry_year: int | None = None,
    note: str = "",
) -> FamilyMember:
    """A relative who is not a customer (children's data is sensitive: see selectors)."""
    ensure_can_write(actor)
    errors: dict[str, list[str]] = {}
    if relation not in Relation.values or relation == Relation.SELF:
        errors["relation"] = [gettext("Select a valid choice.")]
    if birthday_calendar not in ("solar", "lunar"):
        errors["birthday_calendar"] = [gettext("Select a valid choice.")]
    if lunar_birth_month is not None and not 1 <= lunar_birth_month <= 12:
        errors["lunar_birth_month"] = [gettext("Enter a lunar month from 1 to 12.")]
    if lunar_birth_day is not None and not 1 <= lunar_birth_day <= 30:
        errors["lunar_birth_day"] = [gettext("Enter a lunar day from 1 to 30.")]
    if errors:
        raise ValidationFailed(fields=errors)
    with transaction.atomic():
        member = FamilyMember.objects.create(
            customer=customer,
            name=(name or "").strip()[:60],
            relation=relation,
            birthday_calendar=birthday_calendar,
            birth_date=birth_date,
            lunar_birth_month=lunar_birth_month,
            lunar_birth_day=lunar_birth_day,
            lunar_birth_leap=lunar_birth_leap,
            school_entry_year=school_entry_year,
            note=note[:200],
        )
        audit_log(
            actor=actor,
            action=AuditEvent.Action.CREATE,
            target=member,
            target_repr=str(member.get_relation_display()),
            changes={"customer": customer.pk, "relation": relation},
        )
    return member


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
