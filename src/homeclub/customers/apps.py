from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CustomersConfig(AppConfig):
    name = "homeclub.customers"
    label = "customers"
    verbose_name = _("Customers")

    def ready(self) -> None:
        from homeclub.messaging.gates import register_consent_provider

        from .selectors import customer_consents_to

        # Marketing goes only to channels the person consented to (PIPL); the archive's
        # consent history is the source of truth for messaging's gate.
        register_consent_provider(customer_consents_to)
