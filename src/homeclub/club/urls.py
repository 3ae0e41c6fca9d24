from django.urls import path

from . import views

app_name = "club"

urlpatterns = [
    path("card/", views.card, name="card"),
    path("card/qr/", views.card_qr, name="card_qr"),
    path("members/<int:member_id>/card/", views.card, name="member_card"),
]
