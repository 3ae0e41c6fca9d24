"""Channel commissions: schemes, earning at the trigger, clawback, statements, export."""

import datetime as dt
import io
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext, override
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from homeclub.channels.commission_selectors import (
    entry_list,
    statement_get,
    statement_list,
)
from homeclub.channels.commission_statements import (
    COLUMNS,
    statement_approve,
    statement_create,
    statement_export_xlsx,
    statement_mark_paid,
    statement_reject,
    statement_submit,
    statement_void,
)
from homeclub.channels.commissions import (
    commission_on_deal,
    commission_on_payment,
    commission_scheme_create,
    month_bounds,
    scheme_for,
)
from homeclub.channels.models import (
    CommissionDeal,
    CommissionEntry,
    CommissionStatement,
    Report,
)
from homeclub.channels.services import agency_contract_create, agency_create
from homeclub.common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from homeclub.common.models import AuditEvent
from homeclub.customers.models import Customer
from homeclub.inventory.models import Contract, Subscription
from homeclub.inventory.services import (
    contract_sign,
    payment_record,
    subscription_cancel,
    subscription_create,
    subscription_rename,
    subscription_swap,
)
from tests.inventory.conftest import Site, make_site

pytestmark = pytest.mark.django_db

D = Decimal
TODAY = timezone.localdate()


class Deals:
    """The channel world of tests/channels/conftest.py plus units of 滨海府 to sell."""

    def __init__(self, world: Any, site: Site, admin: Any, admin2: Any) -> None:
        self.w = world
        self.site = site
        self.admin = admin  # finance
        self.admin2 = admin2
        self.n = 0

    def scheme(self, **kw: Any) -> Any:
        kw.setdefault("agency", self.w.lianjia)
        kw.setdefault("trigger", "subscribed")
        kw.setdefault("valid_from", TODAY - dt.timedelta(days=30))
        return commission_scheme_create(actor=self.w.manager, project=self.w.org.sz1, **kw)

    def customer(self, agent: Any = None) -> Customer:
        """A customer an agent reported and brought (a credited report)."""
        self.n += 1
        phone = f"136{self.n:08d}"
        agent = agent or self.w.a1
        self.w.report(agent, phone, customer_name=f"客户{self.n}")
        visit = self.w.visit(phone, agent=agent)
        return Customer.objects.get(pk=visit.customer_id)

    def subscribe(
        self, unit: int = 0, customer: Customer | None = None, price: str = "1000000"
    ) -> Subscription:
        sub = subscription_create(
            actor=self.site.manager,
            unit=self.site.unit(unit),
            customer=customer or self.customer(),
            agreed_price=D(price),
            deposit=D("50000"),
        )
        # The inventory's deal hook calls this once wired; a second call changes nothing.
        commission_on_deal(actor=self.site.manager, subscription=sub, event="subscribed")
        return sub

    def sign(self, sub: Subscription, price: str | None = None) -> Contract:
        self.n += 1
        contract = contract_sign(
            actor=self.site.manager,
            subscription=sub,
            number=f"HT-{self.n}",
            price=D(price) if price else None,
        )
        commission_on_deal(actor=self.site.manager, subscription=sub, event="signed")
        return contract

    def pay(self, contract: Contract, amount: str) -> None:
        payment_record(
            actor=self.site.manager, contract=contract, kind="down", amount=D(amount), paid_on=TODAY
        )
        commission_on_payment(actor=self.site.manager, contract=contract)

    def cancel(self, sub: Subscription) -> None:
        subscription_cancel(actor=self.site.manager, subscription=sub, reason="客户退房")
        commission_on_deal(actor=self.site.manager, subscription=sub, event="cancelled")

    def statement(self, **kw: Any) -> CommissionStatement:
        first, last = month_bounds(TODAY)
        return statement_create(
            actor=self.w.manager,
            agency=kw.pop("agency", self.w.lianjia),
            project=self.w.org.sz1,
            period_start=kw.pop("period_start", first),
            period_end=kw.pop("period_end", last),
        )


@pytest.fixture
def deals(world: Any, make_user: Any) -> Deals:
    site = make_site(world.org, make_user, units=6, release=6)
    return Deals(world, site, make_user("admin"), make_user("admin"))


def entries(sub: Subscription) -> list[CommissionEntry]:
    return list(CommissionEntry.objects.filter(subscription=sub).order_by("id"))


# --- schemes ------------------------------------------------------------------------------


def test_fixed_commission_is_earned_at_subscription(deals: Deals) -> None:
    scheme = deals.scheme(kind="fixed", fixed_amount="20000")
    sub = deals.subscribe(price="980000")
    [entry] = entries(sub)
    assert (entry.kind, entry.amount, entry.base_amount) == ("earned", D("20000.00"), D("980000"))
    assert entry.rate is None and entry.scheme_id == scheme.pk and entry.scheme_version == 1
    assert entry.agent_id == deals.w.a1.user.pk and entry.agency_id == deals.w.lianjia.pk
    report = Report.objects.get(pk=entry.report_id)
    assert report.customer_id == sub.customer_id and report.status == "subscribed"
    assert AuditEvent.objects.filter(action="channels.commission.earn", object_id=str(entry.pk))


def test_percent_commission_waits_for_signing_and_takes_the_contract_price(
    deals: Deals,
) -> None:
    deals.scheme(kind="percent", percent="1.5", trigger="signed")
    sub = deals.subscribe(price="1000000")
    assert entries(sub) == []
    deals.sign(sub, price="987654.33")
    [entry] = entries(sub)
    # 987654.33 × 1.5% = 14814.81495 → 14814.81 (half-up to the fen)
    assert entry.amount == D("14814.81") and entry.rate == D("1.5")
    assert entry.base_amount == D("987654.33") and entry.trigger == "signed"


def test_collection_trigger_earns_once_the_share_is_paid(deals: Deals) -> None:
    deals.scheme(kind="percent", percent="2", trigger="collected", collected_share="30")
    sub = deals.subscribe()
    contract = deals.sign(sub, price="1000000")
    assert entries(sub) == []
    deals.pay(contract, "299999.99")
    assert entries(sub) == []
    deals.pay(contract, "0.01")  # exactly 30%
    [entry] = entries(sub)
    assert entry.amount == D("20000.00") and entry.trigger == "collected"
    deals.pay(contract, "100000")
    assert len(entries(sub)) == 1


def test_tiers_rate_each_deal_by_its_rank_among_the_months_standing_deals(
    deals: Deals,
) -> None:
    deals.scheme(kind="tiers", tiers=[(1, D("1.0")), (3, "1.2")])
    subs = [deals.subscribe(unit=i) for i in range(3)]
    got = [(e.rank, e.rate, e.amount) for s in subs for e in entries(s)]
    assert got == [
        (1, D("1.0"), D("10000.00")),
        (2, D("1.0"), D("10000.00")),
        (3, D("1.2"), D("12000.00")),
    ]
    deals.cancel(subs[1])  # a cancelled deal stops counting; the others keep their rate
    fourth = deals.subscribe(unit=3)
    [entry] = entries(fourth)
    assert (entry.rank, entry.amount) == (3, D("12000.00"))
    assert [e.amount for e in entries(subs[2])] == [D("12000.00")]


def test_the_highest_version_covering_the_subscription_day_applies(deals: Deals) -> None:
    deals.scheme(kind="fixed", fixed_amount="10000")
    v2 = deals.scheme(kind="fixed", fixed_amount="15000")
    deals.scheme(
        kind="fixed", fixed_amount="99999", valid_from=TODAY + dt.timedelta(days=1)
    )  # v3, not yet valid
    deals.scheme(agency=deals.w.woai, kind="fixed", fixed_amount="1")  # another agency's v1
    assert scheme_for(agency_id=deals.w.lianjia.pk, project_id=deals.w.org.sz1.pk, day=TODAY) == v2
    [entry] = entries(deals.subscribe())
    assert (entry.amount, entry.scheme_version) == (D("15000.00"), 2)


def test_no_scheme_no_commission_and_a_crowd_agent_earns_none(deals: Deals) -> None:
    sub = deals.subscribe()
    assert entries(sub) == []
    deal = CommissionDeal.objects.get(subscription=sub)
    assert deal.scheme is None and deal.agent_id == deals.w.a1.user.pk
    deals.scheme(kind="fixed", fixed_amount="5000")
    crowd_sub = deals.subscribe(unit=1, customer=deals.customer(deals.w.crowd))
    assert entries(crowd_sub) == [] and not CommissionDeal.objects.filter(subscription=crowd_sub)
    # a scheme made afterwards that covers the day pays the deal at its next event
    deals.sign(sub)
    [entry] = entries(sub)
    assert entry.amount == D("5000.00")


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"kind": "percent", "percent": "0"}, "percent"),
        ({"kind": "percent", "percent": "150"}, "percent"),
        ({"kind": "percent", "percent": "1.23456"}, "percent"),
        ({"kind": "percent", "percent": 1.5}, "percent"),  # a float is refused
        ({"kind": "fixed", "fixed_amount": "-1"}, "fixed_amount"),
        ({"kind": "fixed", "fixed_amount": "10.001"}, "fixed_amount"),
        ({"kind": "tiers", "tiers": [(2, "1.0")]}, "tiers"),
        ({"kind": "tiers", "tiers": [(1, "1.0"), (1, "1.2")]}, "tiers"),
        ({"kind": "tiers", "tiers": []}, "tiers"),
        ({"kind": "fixed", "fixed_amount": "1", "trigger": "collected"}, "collected_share"),
        ({"kind": "fixed", "fixed_amount": "1", "trigger": "later"}, "trigger"),
        ({"kind": "bonus"}, "kind"),
        (
            {"kind": "fixed", "fixed_amount": "1", "valid_to": TODAY - dt.timedelta(days=31)},
            "valid_to",
        ),
    ],
)
def test_scheme_validation_names_the_field(deals: Deals, kw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        deals.scheme(**kw)
    assert field in caught.value.fields and caught.value.fields[field][0]


def test_scheme_needs_a_contract_and_a_channel_manager(deals: Deals, make_user: Any) -> None:
    stranger = agency_create(actor=deals.w.manager, name="只做公园里")
    agency_contract_create(
        actor=deals.w.manager, agency=stranger, project=deals.w.org.sz2, starts_on=TODAY
    )
    with pytest.raises(ValidationFailed) as caught:
        deals.scheme(agency=stranger, kind="fixed", fixed_amount="1")
    assert "agency" in caught.value.fields
    for actor in (deals.w.a1.user, deals.site.manager, make_user("analyst", deals.w.org.group)):
        with pytest.raises(Forbidden):
            commission_scheme_create(
                actor=actor,
                agency=deals.w.lianjia,
                project=deals.w.org.sz1,
                kind="fixed",
                fixed_amount="1",
                trigger="signed",
                valid_from=TODAY,
            )
    gz_manager = make_user("channel_manager", deals.w.org.gz)
    with pytest.raises(NotFound):
        commission_scheme_create(
            actor=gz_manager,
            agency=deals.w.lianjia,
            project=deals.w.org.sz1,
            kind="fixed",
            fixed_amount="1",
            trigger="signed",
            valid_from=TODAY,
        )


# --- exactly once, clawback, rename, swap ---------------------------------------------------


def test_earning_twice_is_impossible(deals: Deals) -> None:
    deals.scheme(kind="fixed", fixed_amount="8000")
    sub = deals.subscribe()
    for event in ("subscribed", "subscribed", "signed"):
        assert commission_on_deal(actor=None, subscription=sub, event=event) is None
    deals.sign(sub)
    [entry] = entries(sub)
    # even a write that skips the service hits the unique index
    entry.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        entry.save()
    with pytest.raises(ValidationFailed):
        commission_on_deal(actor=None, subscription=sub, event="exploded")


def test_cancelled_deal_claws_back_exactly_the_commission_paid(deals: Deals) -> None:
    """Done-when: a cancelled deal claws back exactly the commission paid."""
    deals.scheme(kind="percent", percent="1.37", trigger="signed")
    sub = deals.subscribe(price="1234567.89")
    deals.sign(sub)  # 1234567.89 × 1.37% = 16913.580093 → 16913.58
    st1 = deals.statement()
    statement_submit(actor=deals.w.manager, statement=st1)
    statement_approve(actor=deals.admin, statement=st1)
    paid = statement_mark_paid(actor=deals.admin, statement=st1, reference="BANK-1")
    assert paid.status == "paid" and paid.total == D("16913.58")

    deals.cancel(sub)
    assert commission_on_deal(actor=None, subscription=sub, event="cancelled") is None
    earned, clawback = entries(sub)
    assert clawback.kind == "clawback" and clawback.amount == -earned.amount == D("-16913.58")
    assert clawback.reverses_id == earned.pk and clawback.statement_id is None
    assert clawback.note == "客户退房"
    # carried into the next statement
    st2 = deals.statement(
        period_start=TODAY + dt.timedelta(days=1), period_end=TODAY + dt.timedelta(days=1)
    )
    assert st2.total == D("-16913.58") and st2.deducted_total == D("-16913.58")
    assert list(st2.lines.all()) == [clawback]


def test_cancellation_before_the_trigger_claws_back_nothing(deals: Deals) -> None:
    deals.scheme(kind="fixed", fixed_amount="8000", trigger="signed")
    sub = deals.subscribe()
    deals.cancel(sub)
    assert entries(sub) == []


def test_rename_keeps_the_commission_with_the_agent_who_brought_the_deal(
    deals: Deals,
) -> None:
    deals.scheme(kind="fixed", fixed_amount="6000", trigger="signed")
    sub = deals.subscribe()
    spouse = deals.site.customer_new()  # no report behind the new buyer
    subscription_rename(actor=deals.site.manager, subscription=sub, customer=spouse, reason="更名")
    assert commission_on_deal(actor=None, subscription=sub, event="renamed") is None
    deals.sign(sub)
    [entry] = entries(sub)
    assert entry.agent_id == deals.w.a1.user.pk and entry.amount == D("6000.00")


def test_swap_recomputes_the_commission_on_the_new_price(deals: Deals) -> None:
    deals.scheme(kind="percent", percent="1")
    sub = deals.subscribe(price="1000000")
    subscription_swap(
        actor=deals.site.manager,
        subscription=sub,
        new_unit=deals.site.unit(1),
        agreed_price=D("990000"),
        reason="换房",
    )
    commission_on_deal(actor=None, subscription=sub, event="swapped")
    assert commission_on_deal(actor=None, subscription=sub, event="swapped") is None
    earned, adjustment = entries(sub)
    assert (earned.amount, adjustment.kind, adjustment.amount) == (
        D("10000.00"),
        "adjustment",
        D("-100.00"),
    )
    assert adjustment.base_amount == D("990000.00")
    deals.cancel(Subscription.objects.get(pk=sub.pk))
    clawback = entries(sub)[-1]
    assert clawback.amount == D("-9900.00")
    assert sum(e.amount for e in entries(sub)) == D("0.00")


# --- statements ---------------------------------------------------------------------------


def test_statement_workflow_and_who_may_do_what(deals: Deals, make_user: Any) -> None:
    deals.scheme(kind="fixed", fixed_amount="10000")
    deals.scheme(agency=deals.w.woai, kind="fixed", fixed_amount="10000")
    subs = [deals.subscribe(unit=i) for i in range(2)]
    deals.subscribe(unit=2, customer=deals.customer(deals.w.b1))  # another agency
    with pytest.raises(Forbidden):
        statement_create(
            actor=deals.site.manager,
            agency=deals.w.lianjia,
            project=deals.w.org.sz1,
            period_start=TODAY,
            period_end=TODAY,
        )
    st1 = deals.statement()
    assert (st1.status, st1.line_count, st1.total) == ("draft", 2, D("20000.00"))
    assert {e.subscription_id for e in st1.lines.all()} == {s.pk for s in subs}
    with pytest.raises(Conflict):  # one live statement per period
        deals.statement()
    with pytest.raises(Conflict):  # finance approves only what was submitted
        statement_approve(actor=deals.admin, statement=st1)
    with pytest.raises(Forbidden):  # a channel manager is not finance
        statement_approve(actor=deals.w.manager, statement=st1)
    submitted = statement_submit(actor=deals.w.manager, statement=st1)
    assert submitted.status == "submitted" and submitted.submitted_by_id == deals.w.manager.pk
    with pytest.raises(ValidationFailed):
        statement_reject(actor=deals.admin, statement=st1, reason=" ")
    rejected = statement_reject(actor=deals.admin, statement=st1, reason="第二笔金额有误")
    assert rejected.status == "rejected" and rejected.reject_reason == "第二笔金额有误"
    # the admin resubmits it themselves: then another person must approve
    statement_submit(actor=deals.admin, statement=st1)
    with pytest.raises(Forbidden) as caught:
        statement_approve(actor=deals.admin, statement=st1)
    assert caught.value.code == "four_eyes"
    approved = statement_approve(actor=deals.admin2, statement=st1)
    assert approved.status == "approved" and approved.decided_by_id == deals.admin2.pk
    assert all(e.settled_at is not None for e in approved.lines.all())
    reports = Report.objects.filter(commission_entries__statement=st1)
    assert {r.status for r in reports} == {"settled"}
    with pytest.raises(Conflict):
        statement_void(actor=deals.w.manager, statement=st1, reason="晚了")
    statement_mark_paid(actor=deals.admin, statement=st1)
    actions = list(
        AuditEvent.objects.filter(object_type="channels.commissionstatement", object_id=str(st1.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "channels.commission_statement.create",
        "channels.commission_statement.submit",
        "channels.commission_statement.reject",
        "channels.commission_statement.submit",
        "channels.commission_statement.approve",
        "channels.commission_statement.pay",
    ]
    # the other agency's entry is still open, and nothing is left for 链家
    woai = deals.statement(agency=deals.w.woai)
    assert woai.total == D("10000.00")
    with pytest.raises(ValidationFailed) as empty:
        later = TODAY + dt.timedelta(days=40)
        deals.statement(period_start=later, period_end=later)
    assert empty.value.code == "statement_empty"


def test_void_frees_the_entries_for_the_next_statement(deals: Deals) -> None:
    deals.scheme(kind="fixed", fixed_amount="3000")
    deals.subscribe()
    st1 = deals.statement()
    voided = statement_void(actor=deals.w.manager, statement=st1, reason="重做")
    assert voided.status == "void" and not voided.lines.exists()
    again = deals.statement()  # the same period again: the void one does not count
    assert again.total == D("3000.00") and again.line_count == 1


def test_statements_are_out_of_reach_of_agents_and_other_cities(
    deals: Deals, make_user: Any
) -> None:
    deals.scheme(kind="fixed", fixed_amount="3000")
    sub = deals.subscribe()
    st1 = deals.statement()
    for outsider in (
        deals.w.a1.user,
        deals.w.b1.user,
        make_user("channel_manager", deals.w.org.gz),
    ):
        assert not statement_list(viewer=outsider).exists()
        with pytest.raises(NotFound):
            statement_get(viewer=outsider, pk=st1.pk)
        with pytest.raises(NotFound):
            statement_export_xlsx(actor=outsider, statement=st1.pk)
    assert [e.subscription_id for e in entry_list(viewer=deals.w.a1.user)] == [sub.pk]
    assert not entry_list(viewer=deals.w.a2.user).exists()  # a colleague of the same agency
    assert not entry_list(viewer=deals.w.b1.user).exists()


def test_statement_total_is_the_sum_of_its_lines_to_the_fen(deals: Deals) -> None:
    deals.scheme(kind="fixed", fixed_amount="1000")
    sub = deals.subscribe()
    base = entries(sub)[0]
    CommissionEntry.objects.filter(pk=base.pk).delete()
    first, last = month_bounds(TODAY)

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        amounts=st.lists(
            st.decimals(
                min_value=D("-9999999.99"),
                max_value=D("9999999.99"),
                places=2,
                allow_nan=False,
                allow_infinity=False,
            ),
            min_size=1,
            max_size=15,
        )
    )
    def check(amounts: list[Decimal]) -> None:
        now = timezone.now()
        CommissionEntry.objects.bulk_create(
            CommissionEntry(
                deal=base.deal,
                report_id=base.report_id,
                subscription_id=sub.pk,
                project_id=base.project_id,
                agency_id=base.agency_id,
                agent_id=base.agent_id,
                scheme_id=base.scheme_id,
                scheme_version=1,
                kind="adjustment",
                trigger="subscribed",
                amount=a,
                occurred_at=now,
            )
            for a in amounts
        )
        statement = deals.statement()
        lines = list(statement.lines.values_list("amount", flat=True))
        assert statement.line_count == len(amounts) == len(lines)
        assert statement.total == sum(amounts, D("0")) == sum(lines, D("0"))
        assert statement.earned_total + statement.deducted_total == statement.total
        assert statement.earned_total == sum((a for a in amounts if a >= 0), D("0"))
        CommissionEntry.objects.all().delete()
        CommissionStatement.objects.all().delete()

    check()
    assert (first, last) == month_bounds(last)


def test_statement_xlsx_has_the_lines_masked_phones_and_is_audited(deals: Deals) -> None:
    deals.scheme(kind="percent", percent="1.25")
    a = deals.subscribe(unit=0, price="1000000")
    b = deals.subscribe(unit=1, price="888888.88")
    deals.cancel(a)
    st1 = deals.statement()
    with override("zh-hans"):
        data = statement_export_xlsx(actor=deals.w.manager, statement=st1)
        headers = [str(c) for c in COLUMNS]
        assert gettext("Customer name") == "客户姓名"
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert "链家" in rows[0][0] and "滨海府" in rows[0][0]
    assert list(rows[1]) == headers and "客户姓名" in headers and "手机号" in headers
    body = rows[2:-1]
    assert [r[0] for r in body] == [1, 2, 3]
    amounts = [D(str(r[10])).quantize(D("0.01")) for r in body]
    assert amounts == [D("12500.00"), D("11111.11"), D("-12500.00")]
    phones = [r[3] for r in body]
    assert all("****" in p for p in phones) and "13600000001" not in str(rows)
    assert D(str(rows[-1][10])).quantize(D("0.01")) == st1.total == D("11111.11")
    assert {r[4] for r in body} == {deals.site.units[0].number, deals.site.units[1].number}
    assert b.pk in {e.subscription_id for e in st1.lines.all()}
    event = AuditEvent.objects.get(action="export", object_id=str(st1.pk))
    assert event.changes == {"what": "channels.commission_statement", "rows": 3}
    assert event.actor_id == deals.w.manager.pk
