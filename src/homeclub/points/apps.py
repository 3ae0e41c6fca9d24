from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _


class PointsConfig(AppConfig):
    name = "homeclub.points"
    label = "points"
    verbose_name = _("Points")

    def ready(self) -> None:
        # Registers the expiry notice's default message templates.
        from . import notices  # noqa: F401
        from .models import EarnRate, PointValue
        from .selectors import rates_changed

        for model in (EarnRate, PointValue):
            post_save.connect(rates_changed, sender=model, dispatch_uid=f"rates-{model.__name__}")
            post_delete.connect(rates_changed, sender=model, dispatch_uid=f"rd-{model.__name__}")
