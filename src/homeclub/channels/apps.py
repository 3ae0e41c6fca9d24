from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChannelsConfig(AppConfig):
    name = "homeclub.channels"
    label = "channels"
    verbose_name = _("Channels")

    def ready(self) -> None:
        # Channel reports become attribution claims of the sales office.
        from homeclub.sales.claims import register_claim_source

        from .claims import report_claims

        register_claim_source("channel_report", report_claims)

        from homeclub.customers.privacy import register_erasure_hook

        from .services import reports_erase_personal_data

        register_erasure_hook(reports_erase_personal_data)
