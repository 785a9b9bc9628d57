"""How the search reads its matches on PostgreSQL (search.selectors.postgresql._stages): the names'
index, the latest entries for a common word, common words as typed, phrases from a bounded
set of candidates, a typo corrected to a common name; and the statistics they are chosen by
(search.frequencies). Whatever the way, a rep finds and counts only what they may see."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from documents.models import Document
from search import frequencies, services
from search.frequencies import Frequencies, Statistics
from search.models import SearchEntry
from search.query import parse
from search.selectors import postgresql as reads
from tests.factories import CustomerFactory, SaleFactory
from tests.search.conftest import find, found, index

pytestmark = pytest.mark.django_db
MANY = 1_000_000  # entries the fake statistics pretend the index has


@pytest.fixture
def common(monkeypatch):
    """Make words common: common(entries={"quasar": 0.5}, names={...})."""

    def make(entries=None, names=None):
        statistics = Statistics(
            entries=Frequencies(MANY, dict(entries or {})),
            names=Frequencies(MANY, dict(names or {})),
        )
        monkeypatch.setattr(frequencies, "statistics", lambda: statistics)

    return make


def sources(q: str, **kwargs) -> list[list[str]]:
    options = {"max_hits": 100, "names_first": False, "recent_rows": 1000, **kwargs}
    stages = reads._stages(parse(q), **options)
    return [[read.source for read in stage] for stage in stages]


# Choosing the reads -------------------------------------------------------------------------


def test_rare_words_are_read_through_the_indexes(common):
    common()
    assert sources("quasar") == [["names", "matches"]]
    assert sources("quasar", names_first=True) == [["names"], ["matches"]]


def test_a_word_in_many_entries_is_read_from_the_latest(common):
    common(entries={"quasar": 0.3})
    assert sources("quasar") == [["names", "recent"], ["settled"], ["matches"]]
    assert sources("quas", names_first=True) == [["names"], ["recent"], ["matches"]]
    # too few of the latest would hold both words: the indexes
    common(entries={"quasar": 0.3, "nebula": 0.001})
    assert sources("quasar nebula") == [["names", "settled"], ["matches"]]


def test_a_word_in_too_many_names_skips_the_names(common):
    common(entries={"seats": 0.8}, names={"seats": 0.8})
    assert sources("seats", names_first=True) == [["recent"], ["settled"], ["matches"]]
    # with a type: filter, fewer names are read first (each read to tell its type)
    common(names={"schmidt": 0.005})
    assert sources("schmidt", names_first=True) == [["names"], ["matches"]]
    assert sources("schmidt type:deal", names_first=True) == [["matches"]]


def test_the_share_of_a_word_counts_its_prefixes_and_its_stem():
    shares = Frequencies(1000, {"onboard": 0.1, "onboarding": 0.2, "onboardings": 0.05})
    assert shares.share("onboarding") == pytest.approx(0.35)  # itself, longer, its stem
    assert shares.share("onboarding", prefix=False) == pytest.approx(0.3)
    assert shares.share("Önboard") == pytest.approx(0.35)  # folded
    assert shares.share("on") == pytest.approx(0.35)
    assert shares.share("pricing") == 0
    assert shares.entries("onboarding") == pytest.approx(350)
    assert shares.is_common("onboard") and not shares.is_common("onb")


def test_the_statistics_are_postgresql_s_own(rep, teams, monkeypatch):
    customers = [CustomerFactory(name=f"Okapi {i}", owner=rep) for i in range(30)]
    index(*customers)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE search_searchentry")
    frequencies.statistics_forget()
    assert frequencies.statistics().entries.shares == {}  # a small table: not used
    monkeypatch.setattr(frequencies, "MIN_ROWS", 0)
    frequencies.statistics_forget()
    statistics = frequencies.statistics()
    assert statistics.entries.share("okapi") == pytest.approx(1.0, abs=0.05)
    assert statistics.names.share("okapi") == pytest.approx(1.0, abs=0.05)
    frequencies.statistics_forget()


# What each read finds ------------------------------------------------------------------------


def test_the_latest_entries_hold_what_a_rep_may_see_only(
    rep, other_rep, teams, common, monkeypatch
):
    common(entries={"quasar": 0.5})
    monkeypatch.setattr(reads, "RECENT_MIN_MATCHES", 1)
    assert sources("quasar", recent_rows=2)[0] == ["names", "recent"]
    now = timezone.now()
    mine = [CustomerFactory(name=f"Mine {i}", owner=rep, notes="quasar") for i in range(4)]
    theirs = [
        CustomerFactory(name=f"Theirs {i}", owner=other_rep, notes="quasar") for i in range(4)
    ]
    index(*mine, *theirs)
    for age, customer in enumerate([*mine, *theirs]):
        SearchEntry.objects.filter(customer=customer).update(activity_at=now - timedelta(days=age))
    # the latest 6 entries: mine 0-3 and theirs 0-1; the rep sees and counts 4, capped
    results = find(rep, "quasar", recent_rows=6)
    assert {hit.object_id for hit in results.hits} == {customer.pk for customer in mine}
    assert results.total == 4 and results.capped
    # the latest 2: the two newest of mine only
    assert {h for _, h in found(rep, "quasar", recent_rows=2)} == {mine[0].pk, mine[1].pk}
    # the other rep: theirs only, those among the latest
    assert {h for _, h in found(other_rep, "quasar", recent_rows=6)} == {
        theirs[0].pk, theirs[1].pk
    }  # fmt: skip


def test_nothing_visible_among_the_latest_reads_the_index(
    rep, other_rep, teams, common, monkeypatch
):
    common(entries={"quasar": 0.5})
    monkeypatch.setattr(reads, "RECENT_MIN_MATCHES", 1)
    now = timezone.now()
    mine = CustomerFactory(name="Mine", owner=rep, notes="quasar")
    theirs = [
        CustomerFactory(name=f"Theirs {i}", owner=other_rep, notes="quasar") for i in range(3)
    ]
    index(mine, *theirs)
    SearchEntry.objects.filter(customer=mine).update(activity_at=now - timedelta(days=99))
    assert found(rep, "quasar", recent_rows=3) == [("lead", mine.pk)]


def test_common_words_are_first_found_as_typed(rep, teams, common):
    common(entries={"acme": 0.01})
    acme = CustomerFactory(name="Jo Doe", company="Acme Inc", owner=rep)
    acmeco = CustomerFactory(name="Al Roe", company="Acmeco Ltd", owner=rep)
    index(acme, acmeco)
    results = find(rep, "acme")
    assert [hit.object_id for hit in results.hits] == [acme.pk] and results.capped
    assert {h for _, h in found(rep, "acm")} == {acme.pk, acmeco.pk}  # not common: a prefix
    acme.company = "Globex"
    acme.save()
    index(acme)
    assert found(rep, "acme") == [("lead", acmeco.pk)]  # found as typed nowhere: the prefix
    # an excluded word stays a prefix
    assert found(rep, "al -acme") == []


def test_a_phrase_is_kept_from_a_bounded_number_of_candidates(rep, teams, monkeypatch):
    together = CustomerFactory(name="Jo Zorbas", owner=rep, notes="the annual contract is due")
    apart = CustomerFactory(name="Al Zorbas", owner=rep, notes="a contract, not annual")
    index(together, apart)
    results = find(rep, '"annual contract"')
    assert [hit.object_id for hit in results.hits] == [together.pk] and not results.capped
    assert found(rep, '"contract annual"') == []
    assert found(rep, 'zorbas -"annual contract"') == [("lead", apart.pk)]
    monkeypatch.setattr(reads, "PHRASE_MAX_CANDIDATES", 1)
    assert find(rep, '"annual contract"').capped  # more may hold the words: N+


def test_a_typo_of_a_common_name_is_corrected(rep, other_rep, teams, common):
    common(names={"larsen": 0.04, "laura": 0.04})
    larsen = CustomerFactory(name="Tove Larsen", owner=rep)
    theirs = CustomerFactory(name="Bo Larsen", owner=other_rep)
    index(larsen, theirs)
    results = find(rep, "Lasren")
    assert [hit.object_id for hit in results.hits] == [larsen.pk]
    assert results.fuzzy and results.suggestion == "Larsen" and results.total == 1


def test_a_long_text_is_highlighted_around_the_first_word(rep, teams, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_CHARS", 8000)
    before = " ".join(["lorem ipsum dolor"] * 200)  # 3,600 characters
    document = Document.objects.create(
        title="Framework agreement", file="x.txt", file_size=1, mime_type="text/plain",
        sha256="0" * 64, uploaded_by=rep,
        extracted_text=f"{before} the zeppelin clause applies {before}",
    )  # fmt: skip
    index(document)
    assert SearchEntry.objects.get(document=document, chunk=1).body.count("zeppelin") == 1
    hit = find(rep, "zeppelin").hits[0]
    assert "\ue000zeppelin\ue001 clause" in hit.snippet
    assert len(hit.snippet) < 400


def test_a_deal_among_the_latest_with_a_type_filter(rep, teams, common):
    common(entries={"quasar": 0.5}, names={"quasar": 0.5})
    customer = CustomerFactory(name="Quasar Jones", owner=rep)
    sale = SaleFactory(customer=customer, assigned_to=rep, title="Crane rental")
    index(customer, sale)
    assert found(rep, "quasar type:deal", names_first=True, limit=8) == [("deal", sale.pk)]
