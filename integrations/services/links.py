"""The ledger's links when the CRM's own records change identity: a duplicate merged away."""

from integrations.models import SyncLink

LINK_KEY = "integrations.SyncLink.local_id"  # how a merge record names the moved links


def customer_links_merge(*, survivor_id: int, other_id: int, **_) -> dict:
    """crm.reactions CUSTOMER_MERGE_LINKS: the merged-away customer's live links now link
    the survivor, so its remote records keep syncing with the customer they became; in a
    connection that already links the survivor, the other's link is detached (local_id
    empty: the remote has the duplicate too, and only one of its records can be ours)."""
    live = SyncLink.objects.filter(local_model="customer", deleted_at__isnull=True)
    taken = live.filter(local_id=survivor_id).values_list("connection_id", flat=True)
    links = live.filter(local_id=other_id)
    detached = list(links.filter(connection_id__in=taken).values_list("pk", flat=True))
    moved = list(links.exclude(pk__in=detached).values_list("pk", flat=True))
    SyncLink.objects.filter(pk__in=detached).update(local_id=None)
    SyncLink.objects.filter(pk__in=moved).update(local_id=survivor_id)
    return {
        "moved": {LINK_KEY: moved} if moved else {},
        "detached": {LINK_KEY: detached} if detached else {},
    }
