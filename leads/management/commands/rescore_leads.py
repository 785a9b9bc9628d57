import sys
import time

from django.core.management.base import BaseCommand

from leads.services import leads_rescore


class Command(BaseCommand):
    help = "Recompute every lead's score now (what the nightly task does), with progress."

    def handle(self, *args, **options):
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            width = 30
            filled = int(width * done / total) if total else width
            bar = "#" * filled + "-" * (width - filled)
            self.stdout.write(f"\r[{bar}] {done}/{total} leads", ending="")
            sys.stdout.flush()

        transitions = leads_rescore(progress=progress)
        self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS(
                f"Rescored in {time.monotonic() - started:.1f} s; "
                f"{len(transitions)} grade change(s)."
            )
        )
