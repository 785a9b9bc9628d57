"""The one websocket of the site (/ws/): every event a user's open pages need (crm.realtime).

The client connects with the id of the last event it has seen (`?last_id=`, none on a fresh
page) and is sent what it missed, once and in order, then the new events as they come. Each
event is checked against the connection's user (crm.permissions.realtime) before it goes.
"""

import asyncio
import time
from collections import deque
from importlib import import_module
from types import SimpleNamespace
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user

from crm import realtime
from crm.permissions.realtime import may_receive
from crm.roles import is_admin, role_of

# Ids already sent on this connection: an event can come both from the layer and from a
# replay or a poll. Enough for minutes of traffic; older ones cannot come twice.
REMEMBERED_IDS = 5000
# The embedded mode's poll also looks this far back, for events committed out of id order.
POLL_LOOKBACK_SECONDS = 30
# A socket outlives the page's session: this often (at the next event) it checks that its
# session still signs its user in, and reads the user's role again. A logout in another tab,
# an expired session, a changed password or a deactivated user close it (4401); a demoted
# admin stops receiving admins' events.
RECHECK_SECONDS = 60


class RealtimeConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)  # before accept: the handshake is refused
            return
        self.user = user
        self.session_key = getattr(self.scope.get("session"), "session_key", None)
        self.recheck_at = time.monotonic() + RECHECK_SECONDS
        self.sent_ids: set[int] = set()
        self.sent_order: deque[int] = deque()
        self.cursor = 0
        self.poller = None
        self.groups_joined = [realtime.user_group(user.pk)]
        if await database_sync_to_async(is_admin)(user):
            self.groups_joined.append(realtime.ADMINS_GROUP)
        # Join first, then read the table: an event committed in between comes both ways
        # and is sent once.
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        last_id = _last_id(self.scope.get("query_string", b""))
        if last_id is None:
            self.cursor = await database_sync_to_async(realtime.last_event_id)()
            await self.send_json({"type": "hello", "last_id": self.cursor})
        else:
            self.cursor = last_id
            missed = await database_sync_to_async(realtime.events_after)(last_id)
            if missed is None:
                await self.send_json({"type": "reset"})  # too much missed: reload
                self.cursor = await database_sync_to_async(realtime.last_event_id)()
            else:
                await self.send_json({"type": "hello", "last_id": last_id})
                for event in missed:
                    await self._deliver_row(event)
        if settings.REALTIME_POLL_SECONDS:
            self.poller = asyncio.create_task(self._poll())

    async def disconnect(self, code):
        if getattr(self, "poller", None):
            self.poller.cancel()
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def crm_event(self, message):
        """An event from the layer (crm.realtime.events_push)."""
        await self._deliver(message["event"], message["user_ids"], message["for_admins"])

    async def crm_progress(self, message):
        """A long job's progress (crm.realtime.progress_push): not kept, not replayed."""
        if not await self._still_signed_in():
            return
        if may_receive(self.user, user_ids=message["user_ids"], for_admins=True):
            await self.send_json(message["event"])

    async def _deliver_row(self, event):
        await self._deliver(realtime.event_message(event), event.user_ids, event.for_admins)

    async def _deliver(self, event: dict, user_ids, for_admins: bool) -> None:
        event_id = event["id"]
        if event_id in self.sent_ids:
            return
        self._remember(event_id)
        if not await self._still_signed_in():
            return
        # No query: the user's role is kept on the user between rechecks.
        if may_receive(self.user, user_ids=user_ids, for_admins=for_admins):
            await self.send_json(event)

    async def _still_signed_in(self) -> bool:
        """False (and the socket closed) once the session no longer signs this user in; at
        most one check every RECHECK_SECONDS."""
        if time.monotonic() < self.recheck_at:
            return True
        self.recheck_at = time.monotonic() + RECHECK_SECONDS
        user = await database_sync_to_async(_session_user)(self.session_key)
        if user is None or user.pk != self.user.pk:
            await self.close(code=4401)
            return False
        self.user = user  # its role is read again at the next question
        return True

    def _remember(self, event_id: int) -> None:
        self.sent_ids.add(event_id)
        self.sent_order.append(event_id)
        self.cursor = max(self.cursor, event_id)
        while len(self.sent_order) > REMEMBERED_IDS:
            self.sent_ids.discard(self.sent_order.popleft())

    async def _poll(self):
        """Embedded mode: the worker's and beat's events reach this process only through the
        table."""
        while True:
            await asyncio.sleep(settings.REALTIME_POLL_SECONDS)
            rows = await database_sync_to_async(realtime.events_recent)(
                after_id=self.cursor, seconds=POLL_LOOKBACK_SECONDS
            )
            for event in rows:
                await self._deliver_row(event)


def _session_user(session_key: str | None):
    """The active user the session signs in now (its password unchanged), or None."""
    if not session_key:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = get_user(SimpleNamespace(session=store))
    if not (user.is_authenticated and user.is_active):
        return None
    # Its role read here, in the worker thread, and kept on it: the consumer asks it of every
    # event with no query (a query on the event loop raises SynchronousOnlyOperation).
    role_of(user)
    return user


def _last_id(query_string: bytes) -> int | None:
    values = parse_qs(query_string.decode("latin-1")).get("last_id")
    try:
        return max(0, int(values[0])) if values else None
    except ValueError:
        return None
