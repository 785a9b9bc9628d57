from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "CRM core"

    def ready(self) -> None:
        from crm.celery import ensure_broker_folders

        ensure_broker_folders()
