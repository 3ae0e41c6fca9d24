from django.contrib import admin
from django.urls import include, path

from homeclub.api.api import api
from homeclub.inventory.api import hot_urls

urlpatterns = [
    # The online opening's pick and availability: plain views at the API's own URLs,
    # resolved before the API (see homeclub.inventory.api, "hot endpoints").
    *hot_urls,
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("homeclub.customers.urls")),
    path("inventory/", include("homeclub.inventory.urls")),
    path("sales/", include("homeclub.sales.urls")),
    path("channels/", include("homeclub.channels.urls")),
    path("points/", include("homeclub.points.urls")),
    path("club/", include("homeclub.club.urls")),
    path("rewards/", include("homeclub.rewards.urls")),
    path("", include("homeclub.console.urls")),
]

handler404 = "homeclub.console.views.error_404"
handler500 = "homeclub.console.views.error_500"
