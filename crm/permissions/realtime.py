"""Who receives a real-time event (crm.realtime): decided from the visibility rule when the
event is written, and checked again by every socket before it sends (`may_receive`), so a
connection only ever carries events about records its user may see."""

from django.contrib.auth import get_user_model

from crm.permissions.campaigns import co_manager_ids
from crm.permissions.viewers import sale_viewer_ids
from crm.roles import is_admin


def deal_audience(sale_id: int, *, before: set[int] | None = None, deleted: bool = False):
    """The non-admin users who see the deal now (none once deleted) and those who saw it
    before the change (`before`, from sale_viewer_ids taken then): their board drops it."""
    now = set() if deleted else sale_viewer_ids([sale_id]).get(sale_id, set())
    return now | set(before or ())


def campaign_audience(author_id: int | None) -> list[int]:
    """The managers who see a campaign by this author: the author and the co-managers of
    their teams (crm.permissions.campaigns, the rule read the other way round)."""
    if author_id is None:
        return []
    author = get_user_model()(pk=author_id)
    return co_manager_ids(author)


def may_receive(user, *, user_ids, for_admins: bool) -> bool:
    """Whether a socket of `user` may be sent an event written for `user_ids` (and admins)."""
    if not user.is_active:
        return False
    return user.pk in user_ids or (for_admins and is_admin(user))
