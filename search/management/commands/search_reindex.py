"""Rebuild the global search's index:
`python manage.py search_reindex [--only customer sale] [--workers 2]`.

Entries are rewritten in place, a batch at a time, so search keeps working while it runs;
`--workers` batches at once, each on a database connection of its own.
"""

import sys
import time

from django.core.management.base import BaseCommand, CommandError

from search.services import INDEXED, REBUILD_WORKERS, search_index_rebuild


class Command(BaseCommand):
    help = "Rebuild the global search index (customers, leads, deals, documents, tasks, ...)."

    def add_arguments(self, parser):
        parser.add_argument("--only", nargs="+", choices=sorted(INDEXED), help="only these")
        parser.add_argument(
            "--workers",
            type=int,
            default=REBUILD_WORKERS,
            help="batches written at once, each on a connection of its own (PostgreSQL)",
        )

    def handle(self, *args, only=None, workers=REBUILD_WORKERS, **options):
        if workers < 1:
            raise CommandError("--workers must be at least 1.")
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

        written = search_index_rebuild(models=only, progress=progress, workers=workers)
        if interactive:
            self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS(
                f"Indexed {written:,} entries in {time.monotonic() - started:.1f} s."
            )
        )
