from django.urls import path

from leads import views

app_name = "leads"

urlpatterns = [
    path("", views.lead_list, name="list"),
    path("hot/", views.hot_leads, name="hot"),
    path("rules/", views.scoring_rules, name="rules"),
    path("rules/rescore/<int:pk>/", views.rescore_progress, name="rescore_progress"),
    path("<int:pk>/", views.lead_detail, name="detail"),
    path("<int:pk>/activities/", views.lead_activity_add, name="activity_add"),
]
