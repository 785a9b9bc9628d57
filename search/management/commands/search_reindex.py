"""Rebuild the global search's index: `python manage.py search_reindex [--only customer sale]`.

Entries are rewritten in place, a batch at a time, so search keeps working while it runs.
"""

import sys
import time

from django.core.management.base import BaseCommand

from search.services import INDEXED, search_index_rebuild


class Command(BaseCommand):
    help = "Rebuild the global search index (customers, leads, deals, documents, tasks, ...)."

    def add_arguments(self, parser):
        parser.add_argument("--only", nargs="+", choices=sorted(INDEXED), help="only these")

    def handle(self, *args, only=None, **options):
        started = time.monotonic()
        interactive = sys.stdout.isatty()

        def progress(done: int, total: int) -> None:
            width = 30
            filled = width * done // total if total else width
            bar = "#" * filled + "-" * (width - filled)
            line = f"[{bar}] {done:,}/{total:,} records"
            if interactive:
                self.stdout.write("\r" + line, ending="")
                self.stdout.flush()
            else:
                self.stdout.write(line)

        written = search_index_rebuild(models=only, progress=progress)
        if interactive:
            self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS(
                f"Indexed {written:,} entries in {time.monotonic() - started:.1f} s."
            )
        )
