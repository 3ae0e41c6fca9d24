from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PointsConfig(AppConfig):
    name = "homeclub.points"
    label = "points"
    verbose_name = _("Points")

    def ready(self) -> None:
        # Registers the expiry notice's default message templates.
        from . import notices  # noqa: F401
