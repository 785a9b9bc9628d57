from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "leads"

    def ready(self) -> None:
        from customers.services import customer_change_listeners
        from leads.services import lead_rescore_later

        # A change to a customer's data may change its lead score.
        customer_change_listeners.append(
            lambda customer_ids: lead_rescore_later(customer_ids=customer_ids)
        )
