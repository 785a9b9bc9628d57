"""Cache generations: one number per topic ("deals"), bumped whenever the topic's data
changes. Caches built from that data put the number in their keys, so a bump abandons
them all at once without knowing their keys, and the apps that write the data need not
know who caches it (sales bumps "deals"; analytics reads it).

A generation starts from the clock, not from 1: if the cache loses the number (eviction,
restart), the new one can never equal an old one still present in other keys.
"""

import time

from django.core.cache import cache
from django.db import transaction

KEY_PREFIX = "crm:generation:"
DEALS = "deals"  # any deal created, edited, moved or deleted


def _key(topic: str) -> str:
    return f"{KEY_PREFIX}{topic}"


def generation(topic: str) -> int:
    """The topic's current generation (set on first use)."""
    key = _key(topic)
    value = cache.get(key)
    if value is None:
        cache.add(key, time.time_ns() // 1000, timeout=None)  # add: a concurrent bump wins
        value = cache.get(key)
    return int(value)


def bump(topic: str) -> None:
    """Move the topic to a new generation now."""
    key = _key(topic)
    try:
        cache.incr(key)
    except ValueError:  # not set yet (or evicted): any fresh clock value is new
        cache.set(key, time.time_ns() // 1000, timeout=None)


def bump_on_commit(topic: str) -> None:
    """Bump once the current transaction commits (at once outside a transaction), so no
    reader rebuilds a cache from data that is about to change or roll back."""
    transaction.on_commit(lambda: bump(topic))
