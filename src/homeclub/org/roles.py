"""The roles of DOMAIN.md and what each kind of role may do."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    ADMIN = "admin", _("System administrator")
    CLUB_OPERATOR = "club_operator", _("Club operator")
    SALES_MANAGER = "sales_manager", _("Sales manager")
    SALES_CONSULTANT = "sales_consultant", _("Sales consultant")
    CHANNEL_MANAGER = "channel_manager", _("Channel manager")
    CHANNEL_AGENT = "channel_agent", _("Channel agent")
    CUSTOMER_SERVICE = "customer_service", _("Customer service")
    MERCHANT_STAFF = "merchant_staff", _("Merchant staff")
    ANALYST = "analyst", _("Analyst")
    MEMBER = "member", _("Member")


# Outside the company: they see only their own records, never the org's.
EXTERNAL_ROLES = frozenset({Role.CHANNEL_AGENT, Role.MERCHANT_STAFF, Role.MEMBER})
# See everything, change nothing.
READ_ONLY_ROLES = frozenset({Role.ANALYST})
# Restricted to the records they own inside their projects.
OWN_RECORDS_ROLES = frozenset({Role.SALES_CONSULTANT})
# May see full phone numbers and ID numbers without revealing them one by one.
FULL_PII_ROLES = frozenset({Role.ADMIN})
# May reveal a masked phone (each reveal audited).
REVEAL_ROLES = frozenset(
    {
        Role.ADMIN,
        Role.SALES_MANAGER,
        Role.SALES_CONSULTANT,
        Role.CUSTOMER_SERVICE,
        Role.CLUB_OPERATOR,
        Role.CHANNEL_MANAGER,
    }
)
# Largest number of rows one export may hold, by role (0: no export).
EXPORT_ROW_LIMITS: dict[str, int] = {
    Role.ADMIN: 1_000_000,
    Role.ANALYST: 200_000,
    Role.SALES_MANAGER: 20_000,
    Role.CLUB_OPERATOR: 50_000,
    Role.CHANNEL_MANAGER: 20_000,
    Role.CUSTOMER_SERVICE: 5_000,
    Role.SALES_CONSULTANT: 500,
}
