from django.urls import path

from campaigns import views, views_sequences

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
    path("sequences/", views_sequences.sequence_list, name="sequence_list"),
    path("sequences/new/", views_sequences.sequence_edit, name="sequence_new"),
    path("sequences/<int:pk>/", views_sequences.sequence_detail, name="sequence_detail"),
    path("sequences/<int:pk>/edit/", views_sequences.sequence_edit, name="sequence_edit"),
    path("sequences/<int:pk>/toggle/", views_sequences.sequence_toggle, name="sequence_toggle"),
    path("sequences/<int:pk>/delete/", views_sequences.sequence_delete, name="sequence_delete"),
    path(
        "sequences/<int:pk>/steps/<int:position>/preview/",
        views_sequences.sequence_step_preview,
        name="sequence_step_preview",
    ),
    path(
        "sequences/<int:pk>/enrol-segment/",
        views_sequences.sequence_enrol_segment,
        name="sequence_enrol_segment",
    ),
    path("enrolments/<int:pk>/stop/", views_sequences.enrollment_stop, name="enrollment_stop"),
    path(
        "customer/<int:pk>/sequences/",
        views_sequences.customer_sequences,
        name="customer_sequences",
    ),
    path("customer/<int:pk>/enrol/", views_sequences.customer_enrol, name="customer_enrol"),
    path("lead-emails/", views_sequences.lead_email_settings, name="lead_email_settings"),
    path("drafts/", views_sequences.draft_list, name="draft_list"),
    path("drafts/<int:pk>/", views_sequences.draft_detail, name="draft_detail"),
    path("drafts/<int:pk>/send/", views_sequences.draft_send, name="draft_send"),
    path("drafts/<int:pk>/discard/", views_sequences.draft_discard, name="draft_discard"),
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/<int:pk>/", views.outbox_message, name="outbox_message"),
]
