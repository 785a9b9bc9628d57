from django.urls import path

from integrations import views

app_name = "integrations"

urlpatterns = [
    path("", views.connection_list, name="list"),
    path("new/", views.connection_new, name="new"),
    path("<int:pk>/", views.connection_detail, name="detail"),
    path("<int:pk>/edit/", views.connection_edit, name="edit"),
    path("<int:pk>/test/", views.connection_test_view, name="test"),
    path("<int:pk>/sync/", views.sync_now, name="sync"),
    path("<int:pk>/delete/", views.connection_delete_view, name="delete"),
    path("<int:pk>/mappings/", views.mappings, name="mappings"),
    path("<int:pk>/runs/", views.run_list, name="runs"),
    path("<int:pk>/conflicts/", views.conflict_list, name="conflicts"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/progress/", views.run_progress, name="run_progress"),
    path("runs/<int:pk>/retry/", views.run_retry, name="run_retry"),
    path("conflicts/<int:pk>/resolve/", views.conflict_resolve_view, name="resolve"),
]
