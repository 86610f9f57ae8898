from django.urls import path, re_path

from . import views

app_name = "backends"

urlpatterns = [
    path("", views.backend_page, name="page"),
    path("badge/", views.badge, name="badge"),
    path("mode/", views.mode_set, name="mode"),
    path("pod/start/", views.pod_start, name="start"),
    path("pod/stop/", views.pod_stop, name="stop"),
    path("pods/<int:session_id>/stop/", views.pod_session_stop, name="stop-session"),
    re_path(r"^stopped-pods/(?P<pod_id>[A-Za-z0-9]{1,64})/terminate/$", views.pod_terminate, name="terminate"),
    path("settings/", views.settings_save, name="settings"),
    path("api-key/", views.api_key_save, name="api-key"),
    path("backends/", views.backend_add, name="backend-add"),
    path("backends/<int:backend_id>/", views.backend_update, name="backend-update"),
    path("backends/<int:backend_id>/remove/", views.backend_remove, name="backend-remove"),
]
