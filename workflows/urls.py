from django.urls import path

from . import views

app_name = "workflows"

urlpatterns = [
    path("", views.workflow_list, name="list"),
    path("<int:pk>/", views.workflow_page, name="page"),
    path("<int:pk>/run/", views.workflow_run, name="run"),
    path("<int:pk>/delete/", views.workflow_delete, name="delete"),
]
