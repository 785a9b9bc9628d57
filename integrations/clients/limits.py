"""Rate limiting and retries shared by the HubSpot and Salesforce clients."""

import time
from collections import deque
from collections.abc import Callable

from django.conf import settings


class RemoteError(Exception):
    """The remote refused a request for good (a 4xx other than 429, or retries ran out)."""

    def __init__(self, message: str, *, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.status = status
        self.body = body


class RollingWindow:
    """At most `limit` calls in any `seconds`-long window; `limit` follows what the remote
    announces (HubSpot's X-HubSpot-RateLimit-Max), less a margin for other apps of the
    account (`spare`, a fraction of the limit). `sleep` is injectable."""

    def __init__(self, *, limit: int, seconds: float, spare: float = 0.0, sleep=time.sleep):
        self.limit = limit
        self.seconds = seconds
        self.spare = spare
        self.sleep = sleep
        self.calls: deque[float] = deque()

    @property
    def margin(self) -> int:
        return max(1, int(self.limit * self.spare)) if self.spare else 0

    def wait(self) -> None:
        allowed = max(1, self.limit - self.margin)
        now = time.monotonic()
        while self.calls and now - self.calls[0] >= self.seconds:
            self.calls.popleft()
        if len(self.calls) >= allowed:
            self.sleep(self.seconds - (now - self.calls[0]) + 0.001)
            now = time.monotonic()
            while self.calls and now - self.calls[0] >= self.seconds:
                self.calls.popleft()
        self.calls.append(time.monotonic())

    def announce(self, *, limit: int | None, remaining: int | None) -> None:
        """What the remote said: its limit, and how many calls remain in its window (other
        apps of the account count too: when fewer remain than we think, wait longer)."""
        if limit:
            self.limit = limit
        if remaining is not None and remaining <= self.margin:
            self.sleep(self.seconds / max(self.limit, 1) * (self.margin - remaining + 1))


def with_retries(
    call: Callable[[], object],
    *,
    is_transient: Callable[[Exception], float | None],
    on_attempt: Callable[[], None],
    sleep=time.sleep,
):
    """Run `call`; an error `is_transient` says may pass (429, 5xx, connection) is retried
    after the delay it names or an exponential backoff, up to SYNC_MAX_RETRIES times."""
    attempt = 0
    while True:
        on_attempt()
        try:
            return call()
        except Exception as error:  # noqa: BLE001 - is_transient decides
            retry_after = is_transient(error)
            if retry_after is None or attempt >= settings.SYNC_MAX_RETRIES:
                raise
            delay = max(retry_after, settings.SYNC_RETRY_BASE_SECONDS * (2**attempt))
            sleep(delay)
            attempt += 1
