from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from backends import api as backends_api
from generation import cyberimage_api
from generation.urls import queue_urlpatterns
from photos import api as photos_api

from . import views
from .api import TokenLoginView
from .api_router import router

api_urlpatterns = [
    re_path(r"^auth/token/?$", TokenLoginView.as_view(), name="api-token"),
    re_path(r"^schema/?$", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script from a URL (the Content-Security-Policy allows no inline
    # one); Swagger UI draws its icons as data: images.
    re_path(
        r"^docs/?$",
        csp_update({"img-src": ["data:"]})(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    *photos_api.urlpatterns,
    *router.urls,
    *backends_api.urlpatterns,
    *cyberimage_api.urlpatterns,
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("setup/", views.first_run_setup, name="setup"),
    path("api/", include(api_urlpatterns)),
    path("cyberimage/api/", include((cyberimage_api.prefixed_urlpatterns, "cyberimage"))),
    path("studio/workflows/", include("workflows.urls")),
    path("studio/", include("generation.urls")),
    path("queue/", include((queue_urlpatterns, "queue"))),
    path("backend/", include("backends.urls")),
    path("worker/", include("worker.urls")),
    path("", include("albums.urls")),
    path("", include("photos.urls")),
]

handler400 = "gallery_project.errors.handler400"
handler403 = "gallery_project.errors.handler403"
handler404 = "gallery_project.errors.handler404"
handler500 = "gallery_project.errors.handler500"
