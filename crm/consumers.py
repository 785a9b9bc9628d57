"""The one websocket of the site (/ws/): every event a user's open pages need (crm.realtime).

The client connects with the id of the last event it has seen (`?last_id=`, none on a fresh
page) and is sent what it missed, once and in order, then the new events as they come. Each
event is checked against the connection's user (crm.permissions.realtime) before it goes.
"""

import asyncio
from collections import deque
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from crm import realtime
from crm.permissions.realtime import may_receive
from crm.roles import is_admin

# Ids already sent on this connection: an event can come both from the layer and from a
# replay or a poll. Enough for minutes of traffic; older ones cannot come twice.
REMEMBERED_IDS = 5000
# The embedded mode's poll also looks this far back, for events committed out of id order.
POLL_LOOKBACK_SECONDS = 30


class RealtimeConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)  # before accept: the handshake is refused
            return
        self.user = user
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
        if may_receive(self.user, user_ids=message["user_ids"], for_admins=True):
            await self.send_json(message["event"])

    async def _deliver_row(self, event):
        await self._deliver(realtime.event_message(event), event.user_ids, event.for_admins)

    async def _deliver(self, event: dict, user_ids, for_admins: bool) -> None:
        event_id = event["id"]
        if event_id in self.sent_ids:
            return
        self._remember(event_id)
        # No query: the user's role was read (and kept on the user) when the socket opened.
        if may_receive(self.user, user_ids=user_ids, for_admins=for_admins):
            await self.send_json(event)

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


def _last_id(query_string: bytes) -> int | None:
    values = parse_qs(query_string.decode("latin-1")).get("last_id")
    try:
        return max(0, int(values[0])) if values else None
    except ValueError:
        return None
