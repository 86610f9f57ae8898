from django.urls import path, re_path

from . import views

app_name = "studio"

urlpatterns = [
    path("", views.studio, name="home"),
    path("new/", views.session_new, name="new"),
    path("model-fields/", views.model_fields, name="model-fields"),
    path("composer-preset/", views.composer_preset, name="composer-preset"),
    path("refresh-models/", views.models_refresh, name="refresh-models"),
    path("photo-picker/", views.photo_picker, name="photo-picker"),
    path("prompt-check/", views.prompt_check, name="prompt-check"),
    path("control-upload/", views.control_upload, name="control-upload"),
    path("models/", views.models_page, name="models"),
    path("models/install/", views.install_start, name="install"),
    path("models/install/<int:pk>/", views.install_status, name="install-status"),
    path("models/<str:key>/favorite/", views.model_favorite, name="model-favorite"),
    path("models/<str:key>/options/", views.model_options, name="model-options"),
    path("models/<str:key>/uninstall/", views.model_uninstall, name="model-uninstall"),
    path("presets/", views.presets_page, name="presets"),
    path("presets/components/", views.preset_components, name="preset-components"),
    path("presets/save/", views.preset_save, name="preset-save"),
    path("presets/<int:pk>/delete/", views.preset_delete, name="preset-delete"),
    path("backend-notice/", views.backend_notice, name="backend-notice"),
    path("<int:pk>/", views.session_page, name="session"),
    path("<int:pk>/generate/", views.generate, name="generate"),
    path("<int:pk>/history/", views.history, name="history"),
    re_path(r"^(?P<pk>\d+)/(?P<status>completed|abandoned)/$", views.session_close, name="close"),
    path("steps/<int:pk>/", views.step_panel, name="step-panel"),
    path("steps/<int:pk>/show/", views.step_show, name="step-show"),
    path("steps/<int:pk>/live/", views.step_live, name="step-live"),
    path("steps/<int:pk>/composer/", views.composer_from_step, name="step-composer"),
    path("steps/<int:pk>/select/<uuid:photo_id>/", views.step_select, name="step-select"),
    path("steps/<int:pk>/cancel/", views.step_cancel, name="step-cancel"),
    path("steps/<int:pk>/retry/", views.step_retry, name="step-retry"),
    re_path(r"^steps/(?P<pk>\d+)/(?P<variation>remix|continue)/$", views.step_variation, name="step-variation"),
]

queue_urlpatterns = [
    path("", views.queue_page, name="page"),
    path("indicator/", views.queue_indicator, name="indicator"),
    path("cancel-all/", views.queue_cancel_all, name="cancel-all"),
    path("steps/<int:pk>/cancel/", views.queue_cancel, name="cancel"),
    re_path(r"^processor/(?P<action>pause|resume)/$", views.queue_processor, name="processor"),
]
