"""Loading the demo dataset into the database.

The org tree and the staff go through the org services (one audit row each); customers
are streamed — ``COPY`` on PostgreSQL, batches of one prepared ``INSERT`` through
``executemany`` elsewhere — with one audit row for the whole load, so memory stays flat
and millions of rows stay practical.
Everything happens in one transaction: a failed load leaves nothing behind, so "the demo
group exists" reliably means "the demo is loaded".

Later domains extend the demo by adding a step to :data:`STEPS` (in this package), which
runs after the customers inside the same transaction.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import islice

from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from homeclub.common.audit import audit_log, object_type
from homeclub.common.errors import Conflict
from homeclub.common.models import AuditEvent
from homeclub.customers.models import Customer, CustomerPhone, CustomerProject
from homeclub.customers.rules import name_initials, name_pinyin
from homeclub.org.models import OrgNode, User
from homeclub.org.services import business_unit_create, org_node_create, user_create

from .dataset import (
    BUSINESS_UNITS,
    CITIES,
    DEMO_ACTOR,
    DEMO_PASSWORD,
    GROUP_CODE,
    GROUP_NAME,
    login_specs,
    project_staff,
)
from .generator import CustomerRow, PeopleGenerator, plan_customers

DEFAULT_SEED = 20261123
DEFAULT_CUSTOMERS = 2000
BATCH_SIZE = 5000

Progress = Callable[[int, int], None]


class DemoAlreadyLoaded(Conflict):
    code = "demo_exists"
    default_message = _("The demo data is already loaded.")


@dataclass
class DemoContext:
    """What the steps of a load share: the seed, the tree by code, the staff by username."""

    seed: int
    customers: int
    nodes: dict[str, OrgNode] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    progress: Progress | None = None
    batch_size: int = BATCH_SIZE


def demo_exists() -> bool:
    return OrgNode.objects.filter(code=GROUP_CODE).exists()


def demo_seed(
    *,
    seed: int = DEFAULT_SEED,
    customers: int = DEFAULT_CUSTOMERS,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> DemoContext:
    """Load the whole demo dataset in one transaction; refuse if it is already there
    (:class:`DemoAlreadyLoaded`) rather than load it twice."""
    if customers < 0:
        raise ValueError("customers must not be negative")
    ctx = DemoContext(seed=seed, customers=customers, progress=progress, batch_size=batch_size)
    with transaction.atomic(durable=True):
        if demo_exists():
            raise DemoAlreadyLoaded()
        for step in STEPS:
            step(ctx)
    # Steps that drive the real services (each its own durable transaction), after the
    # base load commits: a failure here leaves the base demo usable and is reported.
    for step in AFTER_STEPS:
        step(ctx)
    return ctx


def create_org(ctx: DemoContext) -> None:
    group = org_node_create(actor=DEMO_ACTOR, kind="group", code=GROUP_CODE, name=GROUP_NAME)
    ctx.nodes["group"] = group
    for kind, code, name in BUSINESS_UNITS:
        business_unit_create(actor=DEMO_ACTOR, group=group, kind=kind, code=code, name=name)
    for city in CITIES:
        city_node = org_node_create(
            actor=DEMO_ACTOR,
            kind="city",
            code=city.code,
            name=city.name,
            parent=group,
            city_name=city.city_name,
            address=city.address,
        )
        ctx.nodes[city.code] = city_node
        for project in city.projects:
            ctx.nodes[project.code] = org_node_create(
                actor=DEMO_ACTOR,
                kind="project",
                code=project.code,
                name=project.name,
                parent=city_node,
                address=project.address,
            )


def _staff_plan() -> list[tuple[str, str, str]]:
    """(username, role, node key) of every demo account, named logins first."""
    plan = [(s.username, s.role, s.node) for s in login_specs()]
    named = {username for username, _role, _node in plan}
    for team in project_staff():
        code = team.project.code
        if team.manager not in named:
            plan.append((team.manager, "sales_manager", code))
        plan += [(c, "sales_consultant", code) for c in team.consultants if c not in named]
    return plan


def create_staff(ctx: DemoContext) -> None:
    people = PeopleGenerator(ctx.seed)
    for number, (username, role, node) in enumerate(_staff_plan()):
        person = people.staff_person(number)
        ctx.users[username] = user_create(
            actor=DEMO_ACTOR,
            username=username,
            password=None,
            role=role,
            name=person.name,
            mobile=person.mobile_e164,
            org_nodes=[ctx.nodes[node]] if node else [],
        )
    # One hash for every account: they share the password anyway, and hashing it ~50
    # times with the production hasher would add tens of seconds to the first start.
    User.objects.filter(pk__in=[u.pk for u in ctx.users.values()]).update(
        password=make_password(DEMO_PASSWORD)
    )


def _batches(rows: Iterator[CustomerRow], size: int) -> Iterator[list[CustomerRow]]:
    while batch := list(islice(rows, size)):
        yield batch


def load_customers(ctx: DemoContext) -> None:
    """Stream the planned customers into the table, one batch in memory at a time."""
    project_ids = {code: node.pk for code, node in ctx.nodes.items()}
    owner_ids = {username: user.pk for username, user in ctx.users.items()}
    rows = plan_customers(ctx.seed, ctx.customers)
    if connection.vendor == "postgresql":
        _copy_customers(ctx, rows, project_ids, owner_ids)
    else:
        _insert_customers(ctx, rows, project_ids, owner_ids)
    _link_phones_and_projects()
    audit_log(
        actor=DEMO_ACTOR,
        action=AuditEvent.Action.CREATE,
        target_type=object_type(Customer),
        target_repr=str(_("Demo customers")),
        changes={"demo_rows": ctx.customers, "seed": ctx.seed},
    )


_COPY_FIELDS = (
    "name",
    "gender",
    "mobile",
    "id_number",
    "birth_date",
    "project",
    "owner",
    "note",
    "name_pinyin",
    "name_initials",
    "created_at",
    "updated_at",
)


@lru_cache(maxsize=200_000)
def _pinyin(name: str) -> tuple[str, str]:
    # Names repeat a lot across a million rows: compute each once.
    return name_pinyin(name), name_initials(name)


def _columns() -> tuple[str, str]:
    meta = Customer._meta
    quote = connection.ops.quote_name
    by_name = {f.name: f.column for f in meta.concrete_fields}
    columns = ", ".join(quote(by_name[name]) for name in _COPY_FIELDS)
    return quote(meta.db_table), columns


def _insert_customers(
    ctx: DemoContext,
    rows: Iterator[CustomerRow],
    project_ids: dict[str, int],
    owner_ids: dict[str, int],
) -> None:
    """One prepared INSERT run with ``executemany`` per batch: on SQLite about four times
    faster than ``bulk_create``, whose statements are capped at 999 parameters."""
    table, columns = _columns()
    marks = ", ".join(["%s"] * len(_COPY_FIELDS))
    sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608 - names from _meta
    ops = connection.ops
    now = ops.adapt_datetimefield_value(timezone.now())
    done = 0
    with connection.cursor() as cursor:
        for batch in _batches(rows, ctx.batch_size):
            cursor.executemany(
                sql,
                [
                    (
                        r.name,
                        r.gender,
                        r.mobile,
                        r.id_number,
                        ops.adapt_datefield_value(r.birth_date),
                        project_ids[r.project_code],
                        owner_ids[r.owner] if r.owner else None,
                        "",
                        *_pinyin(r.name),
                        now,
                        now,
                    )
                    for r in batch
                ],
            )
            done += len(batch)
            if ctx.progress:
                ctx.progress(done, ctx.customers)


def _copy_customers(
    ctx: DemoContext,
    rows: Iterator[CustomerRow],
    project_ids: dict[str, int],
    owner_ids: dict[str, int],
) -> None:
    """PostgreSQL's COPY: several times faster than multi-row INSERTs."""
    table, columns = _columns()
    sql = f"COPY {table} ({columns}) FROM STDIN"
    now = timezone.now()
    done = 0
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for r in rows:
            copy.write_row(
                (
                    r.name,
                    r.gender,
                    r.mobile,
                    r.id_number,
                    r.birth_date,
                    project_ids[r.project_code],
                    owner_ids[r.owner] if r.owner else None,
                    "",
                    *_pinyin(r.name),
                    now,
                    now,
                )
            )
            done += 1
            if ctx.progress and done % ctx.batch_size == 0:
                ctx.progress(done, ctx.customers)
    if ctx.progress and done % ctx.batch_size:
        ctx.progress(done, ctx.customers)


def _link_phones_and_projects() -> None:
    """Set-based, after the stream: every demo customer gets its primary phone row and its
    project link, as the archive services would have written them. Phones were last
    verified 0–23 months ago, so the stale-contacts report has work in it."""
    customer = Customer._meta.db_table
    phone = CustomerPhone._meta.db_table
    link = CustomerProject._meta.db_table
    if connection.vendor == "postgresql":
        verified = "now() - ((c.id % 24) * interval '30 days')"
        true = "true"
    else:
        verified = "strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || ((c.id % 24) * 30) || ' days')"
        true = "1"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {phone} (customer_id, number, kind, is_primary, last_verified_at,"  # noqa: S608
            f" verify_source, created_at, updated_at)"
            f" SELECT c.id, c.mobile, 'mobile', {true}, {verified}, 'import', c.created_at,"
            f" c.updated_at FROM {customer} c"
            f" WHERE NOT EXISTS (SELECT 1 FROM {phone} p WHERE p.customer_id = c.id)"
        )
        cursor.execute(
            f"INSERT INTO {link} (customer_id, project_id, owner_id, first_seen_at,"  # noqa: S608
            f" created_at, updated_at)"
            f" SELECT c.id, c.project_id, c.owner_id, c.created_at, c.created_at, c.updated_at"
            f" FROM {customer} c"
            f" WHERE NOT EXISTS (SELECT 1 FROM {link} l WHERE l.customer_id = c.id)"
        )


Step = Callable[[DemoContext], None]

# The load, in order. Later domains append their steps (visits, members, points …).
STEPS: list[Step] = [create_org, create_staff, load_customers]


def _sales_office(ctx: DemoContext) -> None:
    from .inventory_demo import seed_inventory
    from .sales_demo import seed_channels, seed_club, seed_sales_office

    seed_sales_office(ctx)
    seed_channels(ctx)
    seed_club(ctx)
    seed_inventory(ctx)


# Run after the load commits, through the domains' own services.
AFTER_STEPS: list[Step] = [_sales_office]
