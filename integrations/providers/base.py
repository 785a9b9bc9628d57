"""What the sync engine needs from a provider: its objects, pages of remote records in the
CRM's terms, and batched writes. integrations.providers.hubspot and .salesforce fill it in."""

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class ObjectSpec:
    remote_type: str  # "contacts", "Lead", ...
    local_model: str  # "customer", "sale", "company"
    push_batch: int  # the provider's batch write limit


@dataclass
class Remote:
    """One remote record: its id, when it last changed, its values in the CRM's terms (local
    field -> normalised string) and what the engine resolves through other links."""

    id: str
    modified: datetime | None
    values: dict[str, str]
    email: str = ""
    owner_remote_id: str = ""
    parent_remote_id: str = ""  # a deal's contact (HubSpot) / account or contact (Salesforce)
    # Every parent a deal has remotely (a HubSpot deal may have several contacts), oldest
    # first; the engine picks the one that is the deal's customer.
    parent_remote_ids: list[str] = field(default_factory=list)
    merged_ids: list[str] = field(default_factory=list)
    archived: bool = False
    # The CRM's record key the sync wrote on a record it created (its unique id property).
    local_key: str = ""
    # What the record became and lives on as (object type, id): a converted Salesforce Lead's
    # Contact. The record itself is read-only from then on.
    converted_to: tuple[str, str] | None = None


@dataclass
class Page:
    records: list[Remote]
    next_cursor: object | None  # None: the last page


@dataclass
class PushResult:
    """Per input position: the remote id written (and its modified time), or an error."""

    ids: list[str | None]
    modified: list[datetime | None]
    errors: list[str]
