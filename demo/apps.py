from django.apps import AppConfig


class DemoConfig(AppConfig):
    """seed_demo and the data generators shared with bench/: the top layer, last in
    INSTALLED_APPS, so it may import every app and no app imports it."""

    name = "demo"
