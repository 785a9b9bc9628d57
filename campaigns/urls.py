from django.urls import path

from campaigns import views

app_name = "campaigns"

urlpatterns = [
    path("", views.campaign_list, name="campaign_list"),
    path("new/", views.campaign_edit, name="campaign_new"),
    path("<int:pk>/", views.campaign_detail, name="campaign_detail"),
    path("<int:pk>/edit/", views.campaign_edit, name="campaign_edit"),
    path("<int:pk>/progress/", views.campaign_progress, name="campaign_progress"),
    path("<int:pk>/schedule/", views.campaign_schedule, name="campaign_schedule"),
    path("<int:pk>/delete/", views.campaign_delete, name="campaign_delete"),
    path("<int:pk>/<str:action>/", views.campaign_action, name="campaign_action"),
    path("templates/", views.template_list, name="template_list"),
    path("templates/new/", views.template_edit, name="template_new"),
    path("templates/<int:pk>/", views.template_edit, name="template_edit"),
    path("templates/<int:pk>/preview/", views.template_preview, name="template_preview"),
    path("templates/<int:pk>/send-test/", views.template_send_test, name="template_send_test"),
    path("segments/", views.segment_list, name="segment_list"),
    path("segments/new/", views.segment_edit, name="segment_new"),
    path("segments/<int:pk>/", views.segment_edit, name="segment_edit"),
    path("segments/count/", views.segment_count, name="segment_count"),
    path("customer/<int:pk>/emails/", views.customer_emails, name="customer_emails"),
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/<int:pk>/", views.outbox_message, name="outbox_message"),
]
