from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "documents"

    def ready(self) -> None:
        from documents.selectors import proposal_attached
        from sales.automation import proposal_checks

        # The pipeline's CONTACTED -> PROPOSAL rule asks whether a proposal is attached.
        if proposal_attached not in proposal_checks:  # ready() may run more than once
            proposal_checks.append(proposal_attached)
