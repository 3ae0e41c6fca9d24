from django.urls import path

from . import views

app_name = "inventory"

urlpatterns = [
    path("board/", views.board_index, name="board_index"),
    path("board/<int:project_id>/", views.board, name="board"),
    path("board/<int:project_id>/live/", views.board_live, name="board_live"),
]
