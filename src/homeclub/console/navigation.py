"""Role-aware navigation: one list, each entry says which roles see it."""

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from homeclub.org.roles import Role

R = Role
STAFF = frozenset(
    {
        R.ADMIN,
        R.CLUB_OPERATOR,
        R.SALES_MANAGER,
        R.SALES_CONSULTANT,
        R.CHANNEL_MANAGER,
        R.CUSTOMER_SERVICE,
        R.ANALYST,
    }
)
EVERYONE = frozenset(Role)
SALES = frozenset({R.ADMIN, R.SALES_MANAGER, R.SALES_CONSULTANT})


@dataclass(frozen=True)
class NavItem:
    key: str
    label: object
    url_name: str
    roles: frozenset[str]
    icon: str = ""


NAV: tuple[NavItem, ...] = (
    NavItem("home", _("Home"), "console:home", EVERYONE),
    NavItem("customers", _("Customers"), "console:customer_list", STAFF),
    NavItem("reception", _("Reception"), "sales:reception", SALES),
    NavItem("today", _("Today's follow-ups"), "sales:today", SALES),
    NavItem("pool", _("Public pool"), "sales:pool", SALES),
    NavItem("funnel", _("Pipeline"), "sales:funnel", STAFF),
    NavItem("my_reports", _("My reports"), "channels:home", frozenset({R.CHANNEL_AGENT})),
    NavItem(
        "channel_reports",
        _("Channel reports"),
        "channels:manage",
        frozenset({R.ADMIN, R.CHANNEL_MANAGER, R.SALES_MANAGER, R.ANALYST}),
    ),
    NavItem(
        "commissions",
        _("Commissions"),
        "channels:commission_home",
        frozenset({R.ADMIN, R.CHANNEL_MANAGER, R.SALES_MANAGER, R.ANALYST}),
    ),
    NavItem(
        "my_commissions",
        _("My commissions"),
        "channels:commission_mine",
        frozenset({R.CHANNEL_AGENT}),
    ),
    NavItem("board", _("Sales control"), "inventory:board_index", STAFF),
    NavItem("org", _("Organisation"), "console:org_tree", STAFF),
    NavItem("tokens", _("API tokens"), "console:token_list", EVERYONE - {R.MEMBER}),
    NavItem("audit", _("Audit log"), "console:audit_list", frozenset({R.ADMIN, R.ANALYST})),
)


def nav_for(role: str) -> list[NavItem]:
    return [item for item in NAV if role in item.roles]
