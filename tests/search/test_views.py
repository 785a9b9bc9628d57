"""/search/ and the header box's dropdown: rendering, escaping, refusal, hostile input and a
fixed number of queries."""

import pytest
from django.test import Client
from django.urls import reverse

from search import frequencies
from search.frequencies import Frequencies, Statistics
from tests.factories import CustomerFactory, EmailTemplateFactory, SaleFactory
from tests.search.conftest import index

pytestmark = pytest.mark.django_db
RESULTS = reverse("search:results")
DROPDOWN = reverse("search:dropdown")
HOSTILE = ["'", "&|!:*()", "x" * 10_000, "\x00", "a\x00b", '"', '"unterminated', "-", "--x",
           "!!", "type:", "owner:", "tag:", "stage:", "<script>alert(1)</script>", "\\", "%",
           "a:*", "²", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "١٢٣٤٥٦٧", "OR", "or or", "-a -b", "' OR 1=1 --"]  # fmt: skip


@pytest.fixture
def records(rep, other_rep, teams):
    mine = CustomerFactory(
        name="Kestrel Aviation", owner=rep, notes="Wants <script>alert('x')</script> pricing"
    )
    theirs = CustomerFactory(name="Kestrel Marine", owner=other_rep)
    their_deal = SaleFactory(customer=theirs, title="Kestrel hangar")
    index(mine, theirs, their_deal)
    return {"mine": mine, "theirs": theirs, "their_deal": their_deal}


def test_the_box_is_in_the_header_of_every_page(rep_client):
    page = rep_client.get(reverse("customers:list")).content.decode()
    assert "data-search-box" in page
    assert f'hx-get="{DROPDOWN}"' in page
    assert "js/search.js" in page


def test_results_page_with_facets_counts_and_highlights(rep_client, records):
    response = rep_client.get(RESULTS, {"q": "kestrel"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "<mark>Kestrel</mark> Aviation" in page
    assert reverse("leads:detail", args=[records["mine"].pk]) in page
    assert "<mark>Kestrel</mark>" in page
    assert 'data-facet-count="lead">1<' in page
    assert 'data-facet-count="all">1<' in page


def test_another_reps_records_are_neither_shown_nor_counted(rep_client, records):
    page = rep_client.get(RESULTS, {"q": "kestrel"}).content.decode()
    assert "Marine" not in page and "hangar" not in page
    assert 'data-facet-count="deal">0<' in page
    dropdown = rep_client.get(DROPDOWN, {"q": "kestrel"}).content.decode()
    assert "Aviation" in dropdown and "Marine" not in dropdown and "hangar" not in dropdown


def test_other_rep_sees_theirs_only(other_rep_client, records):
    page = other_rep_client.get(RESULTS, {"q": "kestrel"}).content.decode()
    assert "Marine" in page and "hangar" in page and "Aviation" not in page


def test_a_script_in_a_note_is_shown_as_text(rep_client, records):
    page = rep_client.get(RESULTS, {"q": "pricing"}).content.decode()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; <mark>pricing</mark>" in page


def test_templates_are_refused_to_reps(rep_client, manager, records):
    template = EmailTemplateFactory(name="Kestrel newsletter", created_by=manager)
    index(template)
    hit = f'data-hit="template-{template.pk}"'
    assert hit not in rep_client.get(RESULTS, {"q": "kestrel"}).content.decode()
    assert hit not in rep_client.get(RESULTS, {"q": "kestrel type:template"}).content.decode()
    assert hit not in rep_client.get(RESULTS, {"q": "kestrel", "type": "template"}).content.decode()
    assert 'data-facet-count="template"' not in rep_client.get(RESULTS, {"q": "x"}).content.decode()
    manager_client = Client()
    manager_client.force_login(manager)
    assert hit in manager_client.get(RESULTS, {"q": "kestrel"}).content.decode()


def test_a_type_facet_and_paging(rep_client, rep, records):
    index(*[CustomerFactory(name=f"Kestrel {i}", owner=rep) for i in range(25)])
    first = rep_client.get(RESULTS, {"q": "kestrel", "type": "lead"}).content.decode()
    assert "Page 1 of 2" in first
    last = rep_client.get(RESULTS, {"q": "kestrel", "type": "lead", "page": "99"})
    assert last.status_code == 200 and "Page 2 of 2" in last.content.decode()
    assert rep_client.get(RESULTS, {"q": "kestrel", "type": "deal"}).status_code == 200


def test_did_you_mean(rep_client, records):
    page = rep_client.get(RESULTS, {"q": "Kestral"}).content.decode()
    assert "Did you mean" in page and "Kestrel" in page


def test_dropdown_groups_and_all_results(rep_client, rep, records):
    index(SaleFactory(customer=records["mine"], assigned_to=rep, title="Kestrel fleet"))
    page = rep_client.get(DROPDOWN, {"q": "kest"}).content.decode()
    assert page.index("Leads") >= 0 and "Deals" in page
    assert page.count("data-search-option") == 3  # two hits and "All results"
    assert f"{RESULTS}?q=kest" in page
    assert rep_client.get(DROPDOWN, {"q": ""}).content.strip() == b""


def test_login_required(client):
    for url in (RESULTS, DROPDOWN):
        response = client.get(url, {"q": "x"})
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_only_get(rep_client):
    assert rep_client.post(RESULTS, {"q": "x"}).status_code == 405
    assert rep_client.post(DROPDOWN, {"q": "x"}).status_code == 405


@pytest.mark.parametrize("q", HOSTILE)
def test_hostile_queries_never_fail(rep_client, records, q):
    for url in (RESULTS, DROPDOWN):
        response = rep_client.get(url, {"q": q, "type": q, "page": q})
        # A NUL anywhere is refused by crm.middleware.NulCharacterMiddleware (400).
        assert response.status_code == (400 if "\x00" in q else 200), (url, q)
        assert b"<script>alert(1)" not in response.content


# user, groups, the customers shared with the user's reach, then the search: one statement
# (reads, counts, page, titles and snippets); the typo fallback one more. A manager: their
# team, and the co-managers of their templates and of their campaigns (three more).
PINS = {"rep": (4, 5), "manager": (7, 8)}


@pytest.mark.parametrize("url", [RESULTS, DROPDOWN])
@pytest.mark.parametrize("who", ["rep", "manager"])
def test_a_fixed_number_of_queries(
    client, rep, manager, records, url, who, django_assert_max_num_queries
):
    index(*[CustomerFactory(name=f"Kestrel {i}", owner=rep, notes="pricing") for i in range(30)])
    client.force_login(rep if who == "rep" else manager)
    client.get(url, {"q": "kestrel"})  # warm the session
    found, typo = PINS[who]
    with django_assert_max_num_queries(found):
        assert client.get(url, {"q": "kestrel"}).status_code == 200
    with django_assert_max_num_queries(typo):  # the names with a word like "kestrrel"
        assert client.get(url, {"q": "kestrrel"}).status_code == 200


@pytest.mark.parametrize("url", [RESULTS, DROPDOWN])
def test_a_typo_corrected_then_the_trigram_pass(
    manager_client, rep, records, url, monkeypatch, django_assert_num_queries
):
    """With statistics, a typo is first corrected to the closest common name ("kestner",
    which nothing holds here), then the names with a word like it: three statements."""
    statistics = Statistics(names=Frequencies(1_000_000, {"kestner": 0.01}))
    monkeypatch.setattr(frequencies, "statistics", lambda: statistics)
    manager_client.get(url, {"q": "kestrel"})
    with django_assert_num_queries(PINS["manager"][1] + 1):
        response = manager_client.get(url, {"q": "kestrrel"})
    assert response.status_code == 200 and b"Kestrel Aviation" in response.content
