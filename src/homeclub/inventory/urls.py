from django.urls import path

from . import urls_deals, views

app_name = "inventory"

urlpatterns = [
    path("board/", views.board_index, name="board_index"),
    path("board/<int:project_id>/", views.board, name="board"),
    path("board/<int:project_id>/live/", views.board_live, name="board_live"),
    path("signin/<str:token>/", views.signin, name="signin"),
    path("openings/<int:opening_id>/signin/", views.opening_signin, name="opening_signin"),
    path(
        "openings/<int:opening_id>/signin/code/",
        views.opening_signin_code,
        name="opening_signin_code",
    ),
    path("openings/<int:opening_id>/", views.opening_phone, name="opening_phone"),
    path("openings/<int:opening_id>/live/", views.opening_phone_live, name="opening_phone_live"),
    path(
        "openings/<int:opening_id>/units/<int:unit_id>/favourite/",
        views.opening_phone_favourite,
        name="opening_favourite",
    ),
    path(
        "openings/<int:opening_id>/units/<int:unit_id>/pick/",
        views.opening_phone_pick,
        name="opening_pick",
    ),
    path(
        "openings/<int:opening_id>/units/<int:unit_id>/similar/",
        views.opening_similar,
        name="opening_similar",
    ),
    path("picks/<int:pick_id>/confirm/", views.opening_phone_confirm, name="pick_confirm"),
    path("openings/<int:opening_id>/staff/", views.opening_staff, name="opening_staff"),
]

urlpatterns += urls_deals.urlpatterns
