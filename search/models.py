"""The search index: one table of entries, one per searchable record (and, for a document's
long extracted text, one more per piece of it).

Why one table kept current by the services rather than generated columns on each model: a
record's searchable text spans several tables (a customer's notes and tags, a deal's
customer and activity notes, a document's text in pieces), which a generated column cannot
read; one table also gives the global box one GIN index to probe. The entries are rebuilt by
search.services when the services of the other apps say a record changed (crm.reactions);
a foreign key per indexed model removes an entry with its record (Django's delete cascades
to it). Who may see a hit is never stored here: every query starts from the record's own
model filtered by crm.permissions and joins its entries (selectors), so an entry whose
record is gone could never be shown.

That is why the foreign keys have no constraint in the database: the entries are derived
data, a cache of their records' text, and the seven deferred checks of every entry written
were a tenth of what indexing a 50,000-row import cost (0.57 s at its commit). A record
deleted by raw SQL, or while a task indexed it, leaves an entry no search returns;
`search_reindex` removes those.

For the same reason the table is unlogged on PostgreSQL (migration 0007): its rows and its
indexes (three GIN) are not written to the write-ahead log, which was an eighth of what
indexing an import cost (0.3 s of 2.3 s for 49,000 customers). The price: PostgreSQL empties
an unlogged table when it restarts after a crash (a physical backup restored has it empty,
a streaming replica cannot read it). search.services.search_index_recover, run by beat
every five minutes, then rebuilds the index (about 100 s per million records), and the
search page says that results may be incomplete meanwhile; a clean restart and pg_dump keep
the entries.
"""

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models

from campaigns.models import EmailCampaign, EmailTemplate
from customers.models import Customer
from documents.models import Document
from sales.models import Sale, Task


class Kind(models.TextChoices):
    CUSTOMER = "customer", "Customers"
    LEAD = "lead", "Leads"
    DEAL = "deal", "Deals"
    DOCUMENT = "document", "Documents"
    TASK = "task", "Tasks"
    TEMPLATE = "template", "Email templates"
    CAMPAIGN = "campaign", "Campaigns"


def _record_key(model) -> models.ForeignKey:
    """The entry's record when it is one of `model`'s (partial index in Meta; no constraint
    in the database: see above)."""
    return models.ForeignKey(
        model,
        on_delete=models.CASCADE,
        null=True,
        related_name="search_entries",
        db_index=False,
        db_constraint=False,
    )


class SearchEntry(models.Model):
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # Which record: `record` is the indexed model's key in search.services.INDEXED
    # ("customer", "sale", ...), `record_id` its primary key; unique with `chunk`, the one
    # index the upserts need. The foreign key of the record's model (one of the six below)
    # is set too, for Django's delete cascade; each has a partial index over its own rows
    # only. No constraint in the database (see above).
    record = models.CharField(max_length=10)
    record_id = models.BigIntegerField()
    customer = _record_key(Customer)
    sale = _record_key(Sale)
    document = _record_key(Document)
    task = _record_key(Task)
    template = _record_key(EmailTemplate)
    campaign = _record_key(EmailCampaign)
    # 0: the record itself; 1, 2, ...: consecutive pieces of a document's extracted text
    # (a tsvector must stay under 1 MB, and a long text would pass it).
    chunk = models.PositiveIntegerField(default=0)
    title = models.CharField(max_length=300)
    subtitle = models.CharField(max_length=300, blank=True)
    # Weight A: the name; B: email and its domain, phone digits, company, website, tags;
    # body: prose, weight C (notes, descriptions) or D (a piece of document text).
    # PostgreSQL keeps only the `vector` made of the keys, never read again: their text is
    # left empty (it was a tenth of what indexing an import's customers cost).
    names = models.TextField(blank=True)
    keys = models.TextField(blank=True)
    body = models.TextField(blank=True)
    # Not indexed: only read with a match (owner:me, the boost); deleting a user scans.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    stage = models.CharField(max_length=20, blank=True)  # lifecycle stage or deal status
    tags = models.CharField(max_length=600, blank=True)  # " vip key-account ", lower-cased
    activity_at = models.DateTimeField(null=True)
    # PostgreSQL: the weighted tsvector, set by search.services in the statement after the
    # rows are written. SQLite (the embedded mode): `plain` instead, the lower-cased,
    # unaccented text that a LIKE scans.
    vector = SearchVectorField(null=True)
    plain = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["record", "record_id", "chunk"], name="search_entry_record_once"
            ),
        ]
        indexes = [
            models.Index(
                fields=[field],
                condition=models.Q(**{f"{field}__isnull": False}),
                name=f"search_entry_{field}_idx",
            )
            for field in ("customer", "sale", "document", "task", "template", "campaign")
        ]
        # The GIN indexes (tsvector, trigram) are PostgreSQL-only: migration 0002.
        verbose_name_plural = "search entries"

    def __str__(self) -> str:
        return f"{self.kind}: {self.title}"


INDEXED_FIELDS = ("customer", "sale", "document", "task", "template", "campaign")


class NameWord(models.Model):
    """Every word of the entries' names (their lexemes in the simple configuration:
    unaccented, lower-cased), once: the typo fallback finds the words like those typed by
    their trigrams here (PostgreSQL: a trigram index, migration 0006), then the names that
    hold them through the names' own index.

    A few thousand words stand for a million names: a trigram index over every entry's name
    was the dearest of the entries' indexes to keep (a sixth of what indexing an import's
    customers cost). Words are added with the entries that have them and never removed
    meanwhile: a word no name has any more finds nothing; a full `search_reindex` removes
    them."""

    word = models.TextField(primary_key=True)

    def __str__(self) -> str:
        return self.word


def orphan_entries(record: str, model) -> models.QuerySet:
    """The entries of `record` (search.services.INDEXED's key, `model` its model) whose record
    is gone without Django's delete cascade (raw SQL, deleted while a task indexed it, an
    import that rolled back: the entries have no constraint in the database). NOT EXISTS, an
    anti-join: NOT IN (SELECT ...) over a million records does not fit work_mem as a hash
    and is tested entry by entry against the whole list."""
    exists = model.objects.filter(pk=models.OuterRef("record_id"))
    return SearchEntry.objects.filter(~models.Exists(exists), record=record)
