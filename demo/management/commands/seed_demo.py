"""Load the demo data set (demo.services.demo_seed): users in every role, two teams,
customers with lead profiles, activities and scores, deals, and a draft email campaign.

The same arguments give the same names, amounts and stages every run (a seeded RNG); dates
are laid out relative to today so the demo always looks current. The records are written
with bulk inserts so `--customers 100000 --deals 100000` stays fast.
"""

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from customers.models import Customer
from demo.services import ADMIN_PASSWORD, DEMO_PASSWORD, TEAMS, demo_seed


class Command(BaseCommand):
    help = "Load deterministic demo data (users, teams, customers, deals, activities, tasks)."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=2000)
        parser.add_argument("--deals", type=int, default=1500)
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument(
            "--lead-history",
            type=int,
            default=5000,
            help="Past leads (converted or not) for the AI model to train on; 0 for none.",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when customers already exist (used by `make run`).",
        )
        parser.add_argument(
            "--reset", action="store_true", help="Delete existing customers and deals first."
        )
        parser.add_argument(
            "--allow-without-debug",
            action="store_true",
            help="Seed even with DEBUG off (creates users with publicly known passwords).",
        )

    def handle(
        self,
        *args,
        customers: int,
        deals: int,
        seed: int,
        if_empty: bool,
        reset: bool,
        **options,
    ):
        if not settings.DEBUG and not options.get("allow_without_debug"):
            raise CommandError(
                "seed_demo creates an admin with a publicly known password; it runs only "
                "with DEBUG on (or pass --allow-without-debug on a throwaway server)."
            )
        if deals and not customers:
            raise CommandError("Deals need customers: give --customers too.")
        if if_empty and Customer.objects.exists():
            self.stdout.write("Demo data already present; nothing to do.")
            self._print_logins()
            return
        started = time.monotonic()
        demo_seed(
            customers=customers,
            deals=deals,
            seed=seed,
            reset=reset,
            lead_history=options.get("lead_history", 5000),
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {customers} customers and {deals} deals in "
                f"{time.monotonic() - started:.1f} s."
            )
        )
        self._print_logins()

    def _print_logins(self) -> None:
        self.stdout.write(f"\nDemo logins ({settings.SITE_URL}/accounts/login/):")
        self.stdout.write(f"  admin  / {ADMIN_PASSWORD}   (Admin, also Django admin)")
        for team_name, spec in TEAMS.items():
            self.stdout.write(
                f"  {spec['manager'][0]:<6} / {DEMO_PASSWORD}   (Sales manager, {team_name})"
            )
            for rep in spec["reps"]:
                self.stdout.write(f"  {rep[0]:<6} / {DEMO_PASSWORD}   (Sales rep, {team_name})")
