"""The users of the web_load_50 scenario (bench/scenarios/web_load_50.py), for locust.

Run by the scenario, not by hand: it writes the plan (bench/load/plan.py: who signs in as
whom, with which ids) and reads back the samples. Each simulated user signs in through the
login page (its CSRF token, the password form), then browses and writes like a rep or a
manager with 1-3 s of thinking between actions, as the browser would: the htmx panels a page
loads on its own are fetched right after it, writes send htmx's headers (X-CSRFToken,
HX-Request) or post the plain form and see the page it redirects to. No redirect is followed
on its own and every answer must be the one the browser expects (200, or 302 where a form
redirects), so a lost session is a failure, not a login page answered 200.

The measured window starts when the last user has signed in and lasts BENCH_LOAD_SECONDS;
then the window and every request (start, name, method, milliseconds, status, error) are
written to BENCH_LOAD_SAMPLES.

Environment: BENCH_LOAD_PLAN (the plan's JSON file), BENCH_LOAD_SAMPLES (where to write),
BENCH_LOAD_SECONDS (default 180).
"""

import json
import os
import random
import re
import time
from datetime import datetime, timedelta
from itertools import count
from pathlib import Path

import gevent
from locust import FastHttpUser, between, events, task
from locust.exception import StopUser

PLAN = json.loads(Path(os.environ["BENCH_LOAD_PLAN"]).read_text())
SAMPLES_PATH = Path(os.environ["BENCH_LOAD_SAMPLES"])
SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "180"))
USERS = len(PLAN["users"])
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

# [start (epoch s), name, method, milliseconds, status, error or None] for every request.
samples: list[list] = []
window: dict = {"signed_in": 0}
next_slot = {role: count() for role in ("rep", "manager")}


@events.request.add_listener
def _record(request_type, name, response_time, response, exception, start_time, **_kwargs):
    status = getattr(response, "status_code", 0) or 0
    error = str(exception)[:200] if exception else None
    samples.append([start_time, name, request_type, round(response_time, 2), status, error])


def _signed_in(environment) -> None:
    """Count one finished sign-in (or failed one); the last starts the measured window."""
    window["signed_in"] += 1
    if window["signed_in"] == USERS:
        window["start"] = time.time()
        gevent.spawn_later(SECONDS, _finish, environment)


def _finish(environment) -> None:
    result = {
        "window_start": window["start"],
        "window_end": time.time(),
        "users": USERS,
        "samples": samples,
    }
    SAMPLES_PATH.write_text(json.dumps(result))
    environment.runner.quit()


class CrmUser(FastHttpUser):
    abstract = True
    wait_time = between(1, 3)
    role = ""

    def on_start(self) -> None:
        self.plan = [u for u in PLAN["users"] if u["role"] == self.role][next(next_slot[self.role])]
        self.rng = random.Random(f"{self.plan['username']}-{id(self)}")
        self.moves = {deal["id"]: deal["status"] for deal in self.plan["move_deals"]}
        try:
            signed_in = self._sign_in()
        finally:
            _signed_in(self.environment)
        if not signed_in:
            raise StopUser()

    # Requests ---------------------------------------------------------------------------

    def _call(self, method: str, url: str, name: str, expect: int = 200, **kwargs):
        with self.client.request(
            method, url, name=name, catch_response=True, allow_redirects=False, **kwargs
        ) as response:
            if response.status_code == expect:
                response.success()
            else:
                location = response.headers.get("Location", "") if response.headers else ""
                response.failure(
                    f"{response.status_code}, expected {expect}"
                    + (f" (to {location})" if location else "")
                )
            return response

    def _csrf_token(self) -> str:
        return next((c.value for c in self.client.cookiejar if c.name == "csrftoken"), "")

    def _htmx_headers(self) -> dict:
        return {"X-CSRFToken": self._csrf_token(), "HX-Request": "true"}

    def _sign_in(self) -> bool:
        page = self._call("GET", "/accounts/login/", "login page")
        token = CSRF_FIELD.search(page.text or "")
        if not token:
            return False
        form = {
            "csrfmiddlewaretoken": token.group(1),
            "username": self.plan["username"],
            "password": self.plan["password"],
            "next": "",
        }
        response = self._call("POST", "/accounts/login/", "login", expect=302, data=form)
        return response.status_code == 302

    def _pick(self, key: str):
        return self.rng.choice(self.plan[key])

    # Reading ----------------------------------------------------------------------------

    @task(3)
    def home(self) -> None:
        self._call("GET", "/", "home")

    @task(2)
    def customer_list(self) -> None:
        sort = self.rng.choice(["", "?sort=-created", "?sort=name", "?page=2"])
        self._call("GET", f"/customers/{sort}", "customer list")

    @task(2)
    def customer_search(self) -> None:
        query = f"?q={self._pick('searches')}"
        if self.rng.random() < 0.5:
            query += "&" + self._filter()
        self._call("GET", f"/customers/{query}", "customer search")

    @task(2)
    def customer_filter(self) -> None:
        self._call("GET", f"/customers/?{self._filter()}", "customer filter")

    def _filter(self) -> str:
        field = self.rng.choice(sorted(PLAN["filters"]))
        return f"{field}={self.rng.choice(PLAN['filters'][field])}"

    @task(4)
    def customer_page(self) -> None:
        pk = self._pick("customers")
        self._call("GET", f"/customers/{pk}/", "customer page")
        # The panels the page loads by itself (hx-trigger="load").
        self._call("GET", f"/sales/customers/{pk}/panel/", "customer: deals panel")
        self._call(
            "GET",
            f"/documents/panel/customer/{pk}/?next=/customers/{pk}/",
            "customer: documents panel",
        )
        self._call("GET", f"/campaigns/customer/{pk}/emails/", "customer: emails panel")

    @task(3)
    def deal_page(self) -> None:
        self._deal_page(self._pick("deals"))

    def _deal_page(self, pk: int) -> None:
        self._call("GET", f"/sales/deals/{pk}/", "deal page")
        self._call(
            "GET", f"/documents/panel/sale/{pk}/?next=/sales/deals/{pk}/", "deal: documents panel"
        )

    @task(2)
    def deal_list(self) -> None:
        status = self.rng.choice(["", "", *PLAN["deal_statuses"]])
        self._call("GET", f"/sales/deals/{f'?status={status}' if status else ''}", "deal list")

    @task(2)
    def board(self) -> None:
        self._call("GET", "/sales/pipeline/", "board")

    @task(2)
    def leads(self) -> None:
        self._call("GET", "/leads/", "leads")

    @task(1)
    def forecast(self) -> None:
        self._call("GET", "/sales/forecast/", "forecast")

    @task(1)
    def campaigns(self) -> None:
        self._call("GET", "/campaigns/", "campaigns")

    @task(1)
    def documents(self) -> None:
        self._call("GET", "/documents/", "documents")

    @task(2)
    def my_tasks(self) -> None:
        self._call("GET", "/sales/tasks/", "my tasks")

    # Writing ----------------------------------------------------------------------------

    @task(2)
    def log_activity(self) -> None:
        """The deal page's activity form, posted by htmx (answers the activities panel)."""
        pk = self._pick("write_deals")
        form = {
            "kind": self.rng.choice(["call", "note", "meeting", "email"]),
            "text": "bench: web_load_50 activity",
            "occurred_at": "",
        }
        self._call(
            "POST",
            f"/sales/deals/{pk}/activities/",
            "log activity",
            data=form,
            headers=self._htmx_headers(),
        )

    @task(1)
    def create_task(self) -> None:
        """The deal page's task form, a plain post redirecting to the deal page."""
        pk = self._pick("write_deals")
        due = datetime.now() + timedelta(days=self.rng.randint(1, 14))
        form = {
            "csrfmiddlewaretoken": self._csrf_token(),
            "title": "bench: web_load_50 task",
            "description": "",
            "assigned_to": self.plan["user_id"],
            "priority": self.rng.choice(["LOW", "MEDIUM", "HIGH"]),
            "due_at": due.strftime("%Y-%m-%dT%H:%M"),
        }
        response = self._call(
            "POST", f"/sales/deals/{pk}/tasks/", "create task", expect=302, data=form
        )
        if response.status_code == 302:
            self._deal_page(pk)

    @task(2)
    def move_deal(self) -> None:
        """A card dragged to the next open column (htmx; answers the whole board)."""
        pk = self.rng.choice(sorted(self.moves))
        stages = PLAN["open_statuses"]
        from_status = self.moves[pk]
        to_status = stages[(stages.index(from_status) + 1) % len(stages)]
        form = {"sale": pk, "from_status": from_status, "to_status": to_status}
        response = self._call(
            "POST",
            "/sales/pipeline/move/",
            "move deal",
            data=form,
            headers=self._htmx_headers(),
        )
        if response.status_code == 200:
            self.moves[pk] = to_status


class Rep(CrmUser):
    role = "rep"
    fixed_count = sum(1 for user in PLAN["users"] if user["role"] == "rep")


class Manager(CrmUser):
    role = "manager"
    fixed_count = sum(1 for user in PLAN["users"] if user["role"] == "manager")

    @task(3)
    def analytics(self) -> None:
        self._call("GET", "/analytics/", "analytics")

    @task(2)
    def manager_forecast(self) -> None:
        self._call("GET", "/sales/forecast/", "forecast")
