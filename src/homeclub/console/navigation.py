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
    NavItem(
        "channel_dashboard",
        _("Channel dashboard"),
        "channels:dashboard",
        frozenset({R.ADMIN, R.CHANNEL_MANAGER, R.SALES_MANAGER, R.ANALYST}),
    ),
    NavItem(
        "channel_risk",
        _("Channel risk"),
        "channels:risk",
        frozenset({R.ADMIN, R.CHANNEL_MANAGER, R.ANALYST}),
    ),
    NavItem(
        "appeals",
        _("Appeals"),
        "channels:appeals",
        frozenset({R.ADMIN, R.CHANNEL_MANAGER, R.SALES_MANAGER, R.ANALYST}),
    ),
    NavItem("my_appeals", _("My appeals"), "channels:appeals", frozenset({R.CHANNEL_AGENT})),
    NavItem("board", _("Sales control"), "inventory:board_index", STAFF),
    NavItem(
        "approvals",
        _("Discount approvals"),
        "inventory:approvals",
        frozenset({R.ADMIN, R.SALES_MANAGER}),
    ),
    NavItem(
        "members",
        _("Members"),
        "points:member_list",
        frozenset({R.ADMIN, R.CLUB_OPERATOR, R.CUSTOMER_SERVICE}),
    ),
    NavItem(
        "points_finance",
        _("Points finance"),
        "points:finance",
        frozenset({R.ADMIN, R.CLUB_OPERATOR, R.ANALYST}),
    ),
    NavItem(
        "points_rates",
        _("Points rates"),
        "points:rates",
        frozenset({R.ADMIN, R.CLUB_OPERATOR, R.ANALYST}),
    ),
    NavItem(
        "rewards", _("Rewards catalogue"), "rewards:items", frozenset({R.ADMIN, R.CLUB_OPERATOR})
    ),
    NavItem(
        "reward_orders",
        _("Redemption orders"),
        "rewards:orders",
        frozenset({R.ADMIN, R.CLUB_OPERATOR}),
    ),
    NavItem("points_mall", _("Points mall"), "rewards:catalogue", frozenset({R.MEMBER})),
    NavItem("my_orders", _("My orders"), "rewards:my_orders", frozenset({R.MEMBER})),
    NavItem("org", _("Organisation"), "console:org_tree", STAFF),
    NavItem(
        "earning_rules",
        _("Earning rules"),
        "points:rules",
        frozenset({R.ADMIN, R.CLUB_OPERATOR, R.ANALYST}),
    ),
    NavItem("member_card", _("Member card"), "club:card", frozenset({R.MEMBER})),
    NavItem("tokens", _("API tokens"), "console:token_list", EVERYONE - {R.MEMBER}),
    NavItem("audit", _("Audit log"), "console:audit_list", frozenset({R.ADMIN, R.ANALYST})),
)


def nav_for(role: str) -> list[NavItem]:
    return [item for item in NAV if role in item.roles]
