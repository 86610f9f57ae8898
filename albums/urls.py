from django.urls import path, re_path

from . import public, views

app_name = "albums"

urlpatterns = [
    path("albums/", views.album_list, name="list"),
    path("albums/uncategorized/", views.uncategorized, name="uncategorized"),
    path("albums/choices/", views.album_choices, name="choices"),
    path("albums/<uuid:album_id>/", views.album_detail, name="detail"),
    path("photos/<uuid:photo_id>/albums/", views.photo_albums, name="photo-albums"),
    path("shares/", views.share_list, name="shares"),
    path("shares/new/", views.share_new, name="share-new"),
    # Public: the token in the path is the only key (see public.py).
    path("s/<str:token>/", public.share, name="share"),
    path("s/<str:token>/photos/<uuid:photo_id>/", public.share_photo, name="share-photo"),
    re_path(
        r"^s/(?P<token>[^/]+)/photos/(?P<photo_id>[0-9a-f-]{36})/(?P<variant>thumbnail|display|file)$",
        public.share_photo_file,
        name="share-photo-file",
    ),
    re_path(r"^s/(?P<rest>.*)$", public.not_found, name="share-not-found"),
]
