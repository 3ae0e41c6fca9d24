from django.urls import include, path

from . import views

app_name = "channels"

urlpatterns = [
    path("", views.home, name="home"),
    path("report/new/", views.report_new, name="report_new"),
    path("reports/<int:pk>/", views.report_detail, name="report_detail"),
    path("manage/", views.manage, name="manage"),
    path("", include("homeclub.channels.urls_commission")),
    path("", include("homeclub.channels.urls_risk")),
]
