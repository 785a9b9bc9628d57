import sys
import time

from django.core.management.base import BaseCommand

from leads.services.rescore import leads_rescore


class Command(BaseCommand):
    help = "Recompute every lead's score now (what the nightly task does), with progress."

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-workflows",
            action="store_true",
            help="Grade without starting the hot/warm/cold workflows (first scoring of an "
            "existing database: no mass reassignment, tasks or emails).",
        )

    def handle(self, *args, no_workflows: bool, **options):
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            width = 30
            filled = int(width * done / total) if total else width
            bar = "#" * filled + "-" * (width - filled)
            self.stdout.write(f"\r[{bar}] {done}/{total} leads", ending="")
            sys.stdout.flush()

        transitions = leads_rescore(progress=progress, start_workflows=not no_workflows)
        self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS(
                f"Rescored in {time.monotonic() - started:.1f} s; "
                f"{len(transitions)} grade change(s)."
            )
        )
