from django.urls import path

from customers import views

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
    path("<int:pk>/", views.customer_detail, name="detail"),
    path("<int:pk>/edit/", views.customer_edit, name="edit"),
    path("<int:pk>/delete/", views.customer_delete, name="delete"),
    path("<int:pk>/notes/", views.customer_note_add, name="note_add"),
]
