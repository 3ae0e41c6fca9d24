from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ApiConfig(AppConfig):
    name = "homeclub.api"
    label = "api"
    verbose_name = _("API")

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from homeclub.org.models import OrgNode, User

        from .models import ApiToken
        from .services import token_cache_invalidate

        def invalidate(update_fields: object = None, **_kwargs: object) -> None:
            if update_fields is not None and set(update_fields) <= {"last_login"}:  # type: ignore[call-overload]
                return  # a console sign-in changes nothing a token answers
            token_cache_invalidate()

        for model in (User, OrgNode, ApiToken):
            post_save.connect(
                invalidate, sender=model, weak=False, dispatch_uid=f"api-token-{model.__name__}"
            )
            post_delete.connect(
                invalidate, sender=model, weak=False, dispatch_uid=f"api-token-d-{model.__name__}"
            )
        m2m_changed.connect(
            invalidate,
            sender=User.org_nodes.through,
            weak=False,
            dispatch_uid="api-token-user-nodes",
        )
