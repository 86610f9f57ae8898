from django.urls import path

from . import views

app_name = "photos"

urlpatterns = [
    path("", views.gallery, name="gallery"),
    path("timeline/months/", views.timeline_months, name="timeline-months"),
    path("photos/<uuid:pk>/", views.photo_detail, name="detail"),
    path("photos/<uuid:pk>/tile/", views.photo_tile, name="tile"),
    path("trash/", views.trash, name="trash"),
    path("duplicates/", views.duplicates, name="duplicates"),
    path("trash/empty/", views.trash_empty, name="trash-empty"),
]
