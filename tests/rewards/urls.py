"""The project's URLs plus the catalogue pages and API where the project has not mounted
them yet (the lead mounts them in ``homeclub.urls`` and ``homeclub.api.api``); once
mounted, these are exactly the project's URLs."""

from typing import Any

from django.urls import include, path
from ninja import NinjaAPI

from homeclub.api import errors
from homeclub.api.api import StrictJSONParser
from homeclub.api.api import api as project_api
from homeclub.api.auth import ConsoleSession, TokenAuth
from homeclub.rewards.api import router
from homeclub.urls import urlpatterns as project_urls

extra: list[Any] = []
if not any(mount[1] is router for mount in project_api._routers):
    api = NinjaAPI(
        title="rewards (test mount)",
        version="rewards-test",
        auth=[TokenAuth(), ConsoleSession()],
        parser=StrictJSONParser(),
        urls_namespace="rewards_test_api",
        docs_url=None,
        openapi_url=None,
    )
    errors.install(api)
    api.add_router("/v1/rewards", router, url_name_prefix="rewards_test")
    extra.append(path("api/", api.urls))
if not any(getattr(p, "namespace", None) == "rewards" for p in project_urls):
    extra.append(path("rewards/", include("homeclub.rewards.urls")))

urlpatterns = [*extra, *project_urls]
handler404 = "homeclub.console.views.error_404"
handler500 = "homeclub.console.views.error_500"
