"""The official hubspot-api-client, with HubSpot's limits kept: the rolling 10-second window
its headers announce, searches at most 5 a second, 429 and 5xx retried with backoff. Answers
are read as JSON (`_preload_content=False`): the generated models cost more than the sync."""

import json
import time
from typing import Any

import hubspot
import urllib3
from django.conf import settings

from integrations.clients.limits import RemoteError, RollingWindow, with_retries

# A private app starts at 100 requests per 10 s (Free/Starter); the headers then tell ours.
DEFAULT_WINDOW_LIMIT = 100
SEARCHES_PER_SECOND = 4  # HubSpot allows 5: one spare for the account's other apps
SPARE = 0.05  # of the 10-second window, left to the account's other apps


class HubSpotClient:
    def __init__(self, *, access_token: str, sleep=time.sleep):
        self.client = hubspot.Client.create(
            access_token=access_token, host=settings.HUBSPOT_API_URL.rstrip("/")
        )
        self.window = RollingWindow(
            limit=DEFAULT_WINDOW_LIMIT, seconds=10.0, spare=SPARE, sleep=sleep
        )
        self.searches = RollingWindow(limit=SEARCHES_PER_SECOND, seconds=1.0, sleep=sleep)
        self.sleep = sleep
        self.calls = 0

    def _count(self) -> None:
        self.calls += 1

    def _transient(self, error: Exception) -> float | None:
        status = getattr(error, "status", None)
        if isinstance(error, urllib3.exceptions.HTTPError):
            return 0.0
        if status == 429:
            headers = getattr(error, "headers", None) or {}
            retry_after = headers.get("Retry-After")
            if retry_after:
                return float(retry_after)
            interval = headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
            return (float(interval) / 1000 / 10) if interval else 1.0
        if status is not None and status >= 500:
            return 0.0
        return None

    def _call(self, method, *args, search: bool = False, **kwargs) -> tuple[int, Any]:
        def attempt():
            (self.searches if search else self.window).wait()
            return method(
                *args,
                _preload_content=False,
                _request_timeout=settings.SYNC_TIMEOUT_SECONDS,
                **kwargs,
            )

        try:
            response = with_retries(
                attempt, is_transient=self._transient, on_attempt=self._count, sleep=self.sleep
            )
        except Exception as error:
            status = getattr(error, "status", None)
            body = getattr(error, "body", "") or ""
            raise RemoteError(_message(body) or str(error), status=status, body=body) from error
        headers = response.headers
        if not search:
            limit = headers.get("X-HubSpot-RateLimit-Max")
            remaining = headers.get("X-HubSpot-RateLimit-Remaining")
            self.window.announce(
                limit=int(limit) if limit else None,
                remaining=int(remaining) if remaining is not None else None,
            )
        data = response.data
        return response.status, (json.loads(data) if data else None)

    def _objects(self, object_type: str):
        return getattr(self.client.crm, object_type)

    # -- reads ---------------------------------------------------------------------------------

    def page(
        self,
        object_type: str,
        *,
        after: str | None,
        properties: list[str],
        associations: list[str] | None = None,
        archived: bool = False,
    ) -> dict:
        kwargs = {"limit": 100, "properties": properties, "archived": archived}
        if after:
            kwargs["after"] = after
        if associations:
            kwargs["associations"] = associations
        return self._call(self._objects(object_type).basic_api.get_page, **kwargs)[1]

    def search(self, object_type: str, body: dict) -> dict:
        return self._call(
            self._objects(object_type).search_api.do_search,
            public_object_search_request=body,
            search=True,
        )[1]

    def owners(self, *, after: str | None) -> dict:
        kwargs = {"limit": 100}
        if after:
            kwargs["after"] = after
        return self._call(self.client.crm.owners.owners_api.get_page, **kwargs)[1]

    def associations(self, from_type: str, to_type: str, ids: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for start in range(0, len(ids), 1000):
            body = {"inputs": [{"id": i} for i in ids[start : start + 1000]]}
            answer = self._call(
                self.client.crm.associations.v4.batch_api.get_page,
                from_type,
                to_type,
                batch_input_public_fetch_associations_batch_request=body,
            )[1]
            for result in answer.get("results", []):
                found[str(result["from"]["id"])] = [str(t["toObjectId"]) for t in result["to"]]
        return found

    def property(self, object_type: str, name: str) -> dict:
        return self._call(self.client.crm.properties.core_api.get_by_name, object_type, name)[1]

    def property_create(self, object_type: str, definition: dict) -> dict:
        return self._call(
            self.client.crm.properties.core_api.create, object_type, property_create=definition
        )[1]

    # -- writes (at most 100 inputs a call) -----------------------------------------------------

    def batch_upsert(self, object_type: str, inputs: list[dict]) -> dict:
        return self._call(
            self._objects(object_type).batch_api.upsert,
            batch_input_simple_public_object_batch_input_upsert={"inputs": inputs},
        )[1]

    def associate_default(self, from_type: str, to_type: str, pairs: list[tuple[str, str]]):
        """The default association between each (from id, to id); associating twice is a
        no-op, so a batch sent again is harmless."""
        body = {"inputs": [{"from": {"id": a}, "to": {"id": b}} for a, b in pairs]}
        return self._call(
            self.client.crm.associations.v4.batch_api.create_default,
            from_type,
            to_type,
            batch_input_public_default_association_multi_post=body,
        )[1]

    def dissociate(self, from_type: str, to_type: str, pairs: list[tuple[str, str]]) -> None:
        """No association (of any label) left between each (from id, to id): the v4 batch
        archive, which answers 204; removing one already gone is a no-op, so it is safe to
        send again."""
        targets: dict[str, list[str]] = {}
        for source, target in pairs:
            targets.setdefault(source, []).append(target)
        inputs = [{"from": {"id": s}, "to": [{"id": t} for t in ts]} for s, ts in targets.items()]
        for start in range(0, len(inputs), 100):
            self._call(
                self.client.crm.associations.v4.batch_api.archive,
                from_type,
                to_type,
                batch_input_public_association_multi_archive={
                    "inputs": inputs[start : start + 100]
                },
            )

    def batch_update(self, object_type: str, inputs: list[dict]) -> dict:
        return self._call(
            self._objects(object_type).batch_api.update,
            batch_input_simple_public_object_batch_input={"inputs": inputs},
        )[1]

    def batch_archive(self, object_type: str, ids: list[str]) -> None:
        self._call(
            self._objects(object_type).batch_api.archive,
            batch_input_simple_public_object_id={"inputs": [{"id": i} for i in ids]},
        )


def _message(body: Any) -> str:
    try:
        return json.loads(body).get("message", "")
    except (ValueError, TypeError, AttributeError):
        return str(body)[:300]
