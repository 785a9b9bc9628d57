from django.urls import path

from customers import views
from customers.duplicates import views as duplicates

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="list"),
    path("export.csv", views.customer_export, name="export"),
    path("new/", views.customer_create, name="create"),
    path("options/", views.customer_options, name="options"),
    path("bulk-assign/", views.customer_bulk_assign, name="bulk_assign"),
    path("import/", views.import_upload, name="import_upload"),
    path("import/<int:pk>/", views.import_mapping, name="import_mapping"),
    path("import/<int:pk>/report/", views.import_report, name="import_report"),
    path("import/<int:pk>/not-imported.csv", views.import_rejected_csv, name="import_rejected_csv"),
    path("import/<int:pk>/retry/", views.import_retry, name="import_retry"),
    path("duplicates/", duplicates.duplicate_queue, name="duplicates"),
    path("duplicates/scan/", duplicates.duplicate_scan, name="duplicates_scan"),
    path("duplicates/jobs/<int:pk>/", duplicates.duplicate_job, name="duplicates_job"),
    path("duplicates/<int:pk>/", duplicates.duplicate_pair, name="duplicates_pair"),
    path(
        "duplicates/<int:pk>/dismiss/",
        duplicates.duplicate_pair_dismiss,
        name="duplicates_dismiss",
    ),
    path("duplicates/merges/", duplicates.merge_list, name="duplicates_merges"),
    path("duplicates/merges/<int:pk>/undo/", duplicates.merge_undo, name="duplicates_undo"),
    path("duplicates/bulk/", duplicates.bulk_merge, name="duplicates_bulk"),
    path("<int:pk>/", views.customer_detail, name="detail"),
    path("<int:pk>/edit/", views.customer_edit, name="edit"),
    path("<int:pk>/delete/", views.customer_delete, name="delete"),
    path("<int:pk>/notes/", views.customer_note_add, name="note_add"),
]
