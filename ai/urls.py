from django.urls import path

from ai import views

app_name = "ai"

urlpatterns = [
    path("", views.model_page, name="models"),
    path("train/", views.train_now, name="train"),
    path("runs/<int:pk>/", views.training_progress, name="training_progress"),
    path("models/<int:pk>/activate/", views.activate, name="activate"),
    path("models/<int:pk>/deactivate/", views.deactivate, name="deactivate"),
    path("grading/", views.grading_source, name="grading_source"),
    path(
        "recommendations/customer/<int:pk>/",
        views.customer_recommendations,
        name="customer_recommendations",
    ),
    path("recommendations/deal/<int:pk>/", views.sale_recommendations, name="sale_recommendations"),
    path("recommendations/customer/<int:pk>/share/", views.share, name="share"),
]
