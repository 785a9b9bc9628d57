from django.urls import path

from documents import views

app_name = "documents"

urlpatterns = [
    path("", views.document_list, name="list"),
    path("upload/", views.document_upload, name="upload"),
    path("access-log/", views.access_log, name="access_log"),
    path("panel/<str:kind>/<int:pk>/", views.panel, name="panel"),
    path("panel/<str:kind>/<int:pk>/documents/", views.panel_documents, name="panel_documents"),
    path("<int:pk>/", views.document_detail, name="detail"),
    path("<int:pk>/download/", views.document_download, name="download"),
    path("<int:pk>/preview.png", views.document_preview, name="preview"),
    path("<int:pk>/version/", views.document_version_upload, name="version_upload"),
    path("<int:pk>/restore/", views.document_restore, name="restore"),
    path("<int:pk>/share/", views.document_share, name="share"),
    path("<int:pk>/share-link/", views.document_share_link, name="share_link"),
    path("<int:pk>/audit/", views.document_audit, name="audit"),
]
