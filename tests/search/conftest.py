import pytest

from search import selectors
from search.query import parse
from search.services import records_index


def index(*records) -> None:
    """Index records made by factories (which bypass the services that keep the index)."""
    by_model: dict[str, list[int]] = {}
    names = {"Customer": "customer", "Sale": "sale", "Document": "document", "Task": "task",
             "EmailTemplate": "template", "EmailCampaign": "campaign"}  # fmt: skip
    for record in records:
        by_model.setdefault(names[type(record).__name__], []).append(record.pk)
    for model, ids in by_model.items():
        records_index(model=model, ids=ids)


def find(user, q: str, **kwargs) -> selectors.SearchResults:
    return selectors.search(user=user, parsed=parse(q), **kwargs)


def found(user, q: str, **kwargs) -> list[tuple[str, int]]:
    return [(hit.kind, hit.object_id) for hit in find(user, q, **kwargs).hits]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
