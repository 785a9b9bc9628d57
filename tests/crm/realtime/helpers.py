"""Sockets of signed-in users against the real ASGI application (crm.asgi), through
channels.testing.WebsocketCommunicator, with the Redis channel layer of the test settings."""

from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from crm.asgi import application

SITE_ORIGIN = b"http://localhost"
WAIT = 5  # seconds an expected message may take on a busy machine
QUIET = 0.5  # how long "nothing arrives" is watched


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def session_cookie(client: Client) -> bytes:
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


async def open_socket(user=None, *, last_id=None, origin=SITE_ORIGIN, client=None):
    """(communicator, connected, hello or close code); `client`: the session to use."""
    headers = [(b"origin", origin)] if origin else []
    if client is None and user is not None:
        client = await sync_to_async(signed_in)(user)
    if client is not None:
        headers.append((b"cookie", session_cookie(client)))
    path = "/ws/" if last_id is None else f"/ws/?last_id={last_id}"
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=WAIT)
    if not connected:
        return communicator, False, code
    hello = await communicator.receive_json_from(timeout=WAIT)
    return communicator, True, hello


async def next_event(communicator, topic: str | None = None) -> dict:
    """The next event (of `topic`, skipping others)."""
    while True:
        message = await communicator.receive_json_from(timeout=WAIT)
        if message.get("type") == "event" and (topic is None or message["topic"] == topic):
            return message


def run(coroutine_function):
    """Run an async test body from a sync test (no asyncio plugin in the suite)."""
    return async_to_sync(coroutine_function)()


call = sync_to_async  # a service from the async body: its own thread and connection
