from django.urls import path

from sales import views, views_board, views_forecast

app_name = "sales"

urlpatterns = [
    path("deals/", views.sale_list, name="list"),
    path("deals/new/", views.sale_create, name="create"),
    path("deals/<int:pk>/", views.sale_detail, name="detail"),
    path("deals/<int:pk>/edit/", views.sale_edit, name="edit"),
    path("deals/<int:pk>/delete/", views.sale_delete, name="delete"),
    path("deals/<int:pk>/stage/", views.sale_change_stage, name="change_stage"),
    path("deals/<int:pk>/activities/", views.sale_activity_add, name="activity_add"),
    path("deals/<int:pk>/tasks/", views.sale_task_add, name="task_add"),
    path("pipeline/", views_board.pipeline, name="pipeline"),
    path("pipeline/move/", views_board.pipeline_move, name="pipeline_move"),
    path("pipeline/live/", views_board.pipeline_live, name="pipeline_live"),
    path("pipeline/column/<str:status>/", views_board.pipeline_column, name="pipeline_column"),
    path("pipeline/settings/", views_board.pipeline_settings, name="pipeline_settings"),
    path("forecast/", views_forecast.forecast, name="forecast"),
    path("tasks/", views.my_tasks, name="my_tasks"),
    path("tasks/<int:pk>/toggle/", views.task_toggle, name="task_toggle"),
    path("customers/<int:customer_pk>/panel/", views.customer_panel, name="customer_panel"),
]
