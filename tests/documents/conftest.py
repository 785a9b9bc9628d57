from pathlib import Path

import pytest

from documents import services
from documents.models import Document
from tests.documents import samples
from tests.factories import CustomerFactory, SaleFactory


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path) -> Path:
    """Every stored file of these tests lands in a fresh directory, removed afterwards."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


@pytest.fixture
def customer(rep, teams):
    return CustomerFactory(owner=rep, name="ACME Buyer")


@pytest.fixture
def sale(customer, rep):
    return SaleFactory(customer=customer, assigned_to=rep, title="ACME renewal")


@pytest.fixture
def make_document(django_capture_on_commit_callbacks, teams):
    """Upload through the service, processing run (eagerly) after commit like in production."""

    def make(actor, name="notes.txt", content=samples.TXT, *, process=True, **kwargs) -> Document:
        with django_capture_on_commit_callbacks(execute=process):
            document = services.document_upload(
                actor=actor, upload=samples.upload(name, content), **kwargs
            )
        document.refresh_from_db()
        return document

    return make
