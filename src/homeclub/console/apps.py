from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsoleConfig(AppConfig):
    name = "homeclub.console"
    label = "console"
    verbose_name = _("Console")

    def ready(self) -> None:
        from . import signals  # noqa: F401
