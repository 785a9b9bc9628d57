"""What the global search finds, how it ranks, and whom it shows what (PostgreSQL)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from customers.models import Customer, CustomerNote
from documents.models import Document
from search import services
from search.models import NameWord, SearchEntry
from tests.factories import (
    CustomerFactory,
    EmailCampaignFactory,
    EmailTemplateFactory,
    SaleActivityFactory,
    SaleFactory,
    TagFactory,
    TaskFactory,
)
from tests.search.conftest import find, found, index

pytestmark = pytest.mark.django_db


@pytest.fixture
def muller(rep, teams):
    customer = CustomerFactory(
        name="Anna Müller",
        email="anna@mueller-bau.de",
        phone="+49 30 123-4567",
        company="Müller Bau GmbH",
        website="https://www.mueller-bau.de/",
        owner=rep,
        lifecycle_stage="customer",
        notes="Met at the Hannover fair. Interested in the annual contract.",
        tags=[TagFactory(name="VIP")],
    )
    index(customer)
    return customer


def test_every_word_is_a_prefix(rep, muller):
    assert found(rep, "ann mül") == [("customer", muller.pk)]
    assert found(rep, "hann") == [("customer", muller.pk)]  # a word of the notes


def test_phrase_matches_the_words_in_order(rep, muller):
    assert found(rep, '"annual contract"') == [("customer", muller.pk)]
    assert found(rep, '"contract annual"') == []


def test_exclusion(rep, muller):
    other = CustomerFactory(name="Anna Schmidt", owner=rep, lifecycle_stage="customer")
    index(other)
    assert set(found(rep, "anna")) == {("customer", muller.pk), ("customer", other.pk)}
    assert found(rep, "anna -schmidt") == [("customer", muller.pk)]
    assert found(rep, 'anna -"annual contract"') == [("customer", other.pk)]


def test_or(rep, muller):
    other = CustomerFactory(name="Globex Corp", owner=rep, lifecycle_stage="customer")
    index(other)
    assert set(found(rep, "müller or globex")) == {("customer", muller.pk), ("customer", other.pk)}


@pytest.mark.parametrize("query", ["Muller", "müller", "MÜLLER", "Mull"])
def test_accents_are_ignored_typing_without_them(rep, muller, query):
    assert found(rep, query) == [("customer", muller.pk)]


def test_accents_are_ignored_typing_with_them(rep, teams):
    customer = CustomerFactory(name="Jorg Muller", owner=rep, lifecycle_stage="customer")
    index(customer)
    assert found(rep, "Jörg Müller") == [("customer", customer.pk)]


@pytest.mark.parametrize(
    "query",
    ["+49 30 123-4567", "030 1234567", "030-123-4567", "(030) 123 4567", "1234567", "4930123"],
)
def test_a_phone_number_in_any_format(rep, muller, query):
    assert found(rep, query) == [("customer", muller.pk)]


@pytest.mark.parametrize(
    "query",
    ["020 7946 0958", "+44 20 7946 0958", "+44 (0)20 7946-0958", "7946 0958", "0958", "2079",
     "44 20 79"],
)  # fmt: skip
def test_a_number_with_a_trunk_zero_and_an_extension(rep, teams, query):
    london = CustomerFactory(
        name="Kit", phone="+44 (0)20 7946-0958 ext. 12", owner=rep, lifecycle_stage="customer"
    )
    index(london)
    assert found(rep, query) == [("customer", london.pk)]


@pytest.mark.parametrize("query", ["555 28", "555-288-2736", "288 2736", "2736", "1 555 288"])
def test_a_number_is_found_by_its_beginning_or_its_end(rep, teams, query):
    boston = CustomerFactory(
        name="Lou", phone="+1 555 288 2736", owner=rep, lifecycle_stage="customer"
    )
    index(boston)
    assert found(rep, query) == [("customer", boston.pk)]


@pytest.mark.parametrize("query", ["r6", "R63", "0", "0r", "0R6", "0r63"])
def test_a_code_typed_like_the_reversed_digits_finds_no_number(rep, teams, query):
    """The reversed digits begin with a mark (search.text) that a word typed only matches
    as typed, never as a prefix."""
    index(CustomerFactory(name="Lou", phone="+1 555 288 2736", owner=rep))
    assert found(rep, query) == []


def test_digits_inside_a_number_match_no_other_number(rep, teams):
    """ "2882" begins no form of the number and does not end it: not found, where every
    tail of the digits used to be a word (search.text.phone_terms)."""
    index(
        CustomerFactory(name="Lou", phone="+1 555 288 2736", owner=rep, lifecycle_stage="customer")
    )
    assert found(rep, "2882") == []


@pytest.mark.parametrize("query", ["mueller-bau.de", "anna@mueller-bau.de", "@mueller-bau.de"])
def test_an_email_and_its_domain(rep, muller, query):
    assert found(rep, query) == [("customer", muller.pk)]


def test_website_company_and_tag_words(rep, muller):
    assert found(rep, "bau gmbh") == [("customer", muller.pk)]
    assert found(rep, "vip") == [("customer", muller.pk)]


def test_a_typo_is_found_by_the_trigram_fallback_with_did_you_mean(rep, muller):
    results = find(rep, "Mulelr")
    assert results.fuzzy
    assert [(h.kind, h.object_id) for h in results.hits] == [("customer", muller.pk)]
    assert results.suggestion == "Müller"
    assert find(rep, "Anna Muler").suggestion == "Anna Müller"


def test_no_fallback_when_full_text_finds_something(rep, muller):
    results = find(rep, "anna")
    assert not results.fuzzy and results.suggestion == ""


def test_an_exact_name_beats_a_word_in_a_note(rep, teams):
    in_note = CustomerFactory(name="Beta Industries", owner=rep, notes="Referred by Hartmann")
    named = CustomerFactory(name="Klaus Hartmann", owner=rep)
    index(in_note, named)
    assert found(rep, "hartmann") == [("lead", named.pk), ("lead", in_note.pk)]


def test_own_records_get_a_boost(rep, other_rep, teams):
    mine = CustomerFactory(name="Delta Logistics", owner=rep)
    shared = CustomerFactory(name="Delta Logistics", owner=other_rep, shared_with=[rep])
    index(mine, shared)
    SearchEntry.objects.update(activity_at=timezone.now())
    assert found(rep, "delta") == [("lead", mine.pk), ("lead", shared.pk)]
    assert found(other_rep, "delta") == [("lead", shared.pk)]


def test_deals_by_title_customer_and_activity_notes(rep, muller):
    sale = SaleFactory(customer=muller, assigned_to=rep, title="Crane rental 2027")
    SaleActivityFactory(sale=sale, text="Discussed the tower crane discount")
    index(sale)
    assert ("deal", sale.pk) in found(rep, "crane rental")
    assert ("deal", sale.pk) in found(rep, "type:deal müller")
    assert found(rep, "discount") == [("deal", sale.pk)]


def test_document_text_in_pieces(rep, muller, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_CHARS", 1000)
    filler = " ".join(["lorem ipsum dolor"] * 800)
    document = Document.objects.create(
        title="Framework agreement", file="x.txt", file_size=1, mime_type="text/plain",
        sha256="0" * 64, uploaded_by=rep, customer=muller,
        extracted_text=f"{filler} the zeppelin clause {filler}",
    )  # fmt: skip
    index(document)
    pieces = SearchEntry.objects.filter(document=document).count()
    assert pieces > 10
    results = find(rep, "zeppelin")
    assert [(h.kind, h.object_id) for h in results.hits] == [("document", document.pk)]
    assert results.counts == {"document": 1}  # one document, however many pieces matched
    assert "\ue000zeppelin\ue001" in results.hits[0].snippet
    assert results.hits[0].title == "Framework agreement"


def test_a_document_of_a_million_characters_is_indexed(rep, muller):
    words = " ".join(f"w{i}x" for i in range(150_000))  # over 1 MB as one tsvector
    document = Document.objects.create(
        title="Huge export", file="x.txt", file_size=1, mime_type="text/plain",
        sha256="0" * 64, uploaded_by=rep, extracted_text=words[:1_000_000],
    )  # fmt: skip
    index(document)
    assert SearchEntry.objects.filter(document=document).count() > 10
    assert found(rep, "w100000x") == [("document", document.pk)]


def test_highlights_are_marked_and_the_text_is_not_html(rep, teams):
    customer = CustomerFactory(
        name="Script Kiddie Ltd", owner=rep, notes="Said <script>alert(1)</script> about pricing"
    )
    index(customer)
    hit = find(rep, "pricing").hits[0]
    assert "\ue000pricing\ue001" in hit.snippet
    assert "script\ue003alert(1)" in hit.snippet  # kept, as text (the template escapes it)


def test_field_filters(rep, teammate, muller, teams):
    lead = CustomerFactory(name="Anna Lead", owner=rep, lifecycle_stage="lead")
    sale = SaleFactory(customer=muller, assigned_to=rep, title="Anna deal", status="PROPOSAL")
    other_sale = SaleFactory(  # on rep's customer, so rep sees it, but teammate's deal
        customer=muller, assigned_to=teammate, title="Anna other deal", status="NEW"
    )
    index(lead, sale, other_sale)
    assert found(rep, "anna type:lead") == [("lead", lead.pk)]
    assert found(rep, "anna type:deal stage:proposal") == [("deal", sale.pk)]
    assert found(rep, "anna tag:vip") == [("customer", muller.pk)]
    assert ("deal", other_sale.pk) in found(rep, "anna")
    assert ("deal", other_sale.pk) not in found(rep, "anna owner:me")


def test_tasks_templates_and_campaigns(rep, manager, teams):
    task = TaskFactory(assigned_to=rep, title="Call Oskar about the renewal")
    template = EmailTemplateFactory(name="Oskar welcome", created_by=manager)
    campaign = EmailCampaignFactory(name="Oskar launch", created_by=manager, template=template)
    index(task, template, campaign)
    assert found(rep, "oskar") == [("task", task.pk)]  # templates and campaigns: managers'
    assert set(found(manager, "oskar")) == {
        ("task", task.pk),
        ("template", template.pk),
        ("campaign", campaign.pk),
    }


def test_another_reps_records_are_neither_listed_nor_counted(rep, other_rep, manager, teams):
    mine = CustomerFactory(name="Zephyr Mine", owner=rep)
    theirs = CustomerFactory(name="Zephyr Theirs", owner=other_rep)
    their_sale = SaleFactory(customer=theirs, title="Zephyr big deal")
    their_task = TaskFactory(assigned_to=other_rep, title="Zephyr call")
    index(mine, theirs, their_sale, their_task)
    results = find(rep, "zephyr")
    assert [(h.kind, h.object_id) for h in results.hits] == [("lead", mine.pk)]
    assert results.counts == {"lead": 1}
    assert results.total == 1
    # Nor through the typo fallback.
    assert [(h.kind, h.object_id) for h in find(rep, "Zephyrr").hits] == [("lead", mine.pk)]
    # The manager of rep's team sees rep's, not other_rep's; an admin sees all.
    assert find(manager, "zephyr").counts == {"lead": 1}


def test_shared_customers_are_found(rep, other_rep, teams):
    shared = CustomerFactory(name="Quokka Shared", owner=other_rep, shared_with=[rep])
    index(shared)
    assert found(rep, "quokka") == [("lead", shared.pk)]


def test_admin_sees_everything(admin_user, rep, other_rep, teams):
    a = CustomerFactory(name="Wombat One", owner=rep)
    b = CustomerFactory(name="Wombat Two", owner=other_rep)
    index(a, b)
    assert find(admin_user, "wombat").total == 2


def test_counts_are_per_type_and_paging_works(rep, teams):
    customers = [CustomerFactory(name=f"Yak {i}", owner=rep) for i in range(7)]
    index(*customers)
    first = find(rep, "yak", limit=5)
    second = find(rep, "yak", offset=5, limit=5)
    assert first.total == 7 and len(first.hits) == 5 and len(second.hits) == 2
    assert {h.object_id for h in first.hits} | {h.object_id for h in second.hits} == {
        c.pk for c in customers
    }
    assert find(rep, "yak", kinds=["deal"]).hits == []


def test_recent_activity_is_boosted(rep, teams):
    old = CustomerFactory(name="Ibex Old", owner=rep)
    new = CustomerFactory(name="Ibex New", owner=rep)
    index(old, new)
    SearchEntry.objects.filter(customer=old).update(
        activity_at=timezone.now() - timedelta(days=400)
    )
    assert found(rep, "ibex")[0] == ("lead", new.pk)


def test_notes_added_later_are_found(rep, teams):
    customer = CustomerFactory(name="Okapi", owner=rep)
    CustomerNote.objects.create(customer=customer, author=rep, text="Budget approved in March")
    index(customer)
    assert found(rep, "budget approved") == [("lead", customer.pk)]


def test_a_word_matching_more_than_max_hits_is_capped_and_names_come_first(rep, teams):
    by_note = [
        CustomerFactory(owner=rep, name=f"Note {i}", notes="Quasar project") for i in range(6)
    ]
    by_name = CustomerFactory(owner=rep, name="Quasar Ltd")
    index(*by_note, by_name)
    results = find(rep, "quasar", max_hits=3)
    assert results.capped
    assert 3 <= results.total < 7
    assert results.hits[0].object_id == by_name.pk  # matched in a name: always read
    assert not find(rep, "quasar").capped and find(rep, "quasar").total == 7


def test_the_dropdown_reads_the_names_first_and_the_rest_only_when_no_name_matches(
    rep, other_rep, muller
):
    in_a_note = CustomerFactory(
        name="Jon Brandt", owner=rep, lifecycle_stage="customer", notes="Knows Anna, Hannover."
    )
    theirs = CustomerFactory(name="Anna Theirs", owner=other_rep, lifecycle_stage="customer")
    index(in_a_note, theirs)
    names_first = {"names_first": True, "limit": 8, "snippets": False}
    # A name matches: the names alone, counted as "at least" (the notes are not read).
    results = find(rep, "anna", **names_first)
    assert [(hit.kind, hit.object_id) for hit in results.hits] == [("customer", muller.pk)]
    assert results.capped and results.counts == {"customer": 1}
    assert set(found(rep, "anna")) == {("customer", muller.pk), ("customer", in_a_note.pk)}
    # The whole query holds for the names found: an exclusion, a word in another field.
    assert found(rep, "anna -hannover", **names_first) == []
    assert found(rep, "anna vip", **names_first) == [("customer", muller.pk)]
    # No name the rep may see matches: the whole index, exact counts.
    results = find(rep, "hannover", **names_first)
    assert {(hit.kind, hit.object_id) for hit in results.hits} == {
        ("customer", muller.pk), ("customer", in_a_note.pk)
    }  # fmt: skip
    assert not results.capped
    assert found(rep, "theirs", **names_first) == []


def test_the_fallback_finds_names_by_their_words_like_the_ones_typed(rep, teams):
    """search.models.NameWord: the names' words, unaccented, each once; a typo finds the
    names holding a word like it, and only those the typed words match together."""
    both = CustomerFactory(name="Jürgen Hausler", owner=rep)
    first_only = CustomerFactory(name="Jürgen Quast", owner=rep)
    index(both, first_only)
    words = set(NameWord.objects.values_list("word", flat=True))
    assert {"jurgen", "hausler", "quast"} <= words
    assert set(found(rep, "Hauslr")) == {("lead", both.pk)}
    assert found(rep, "Jurgn Hauslr")[0] == ("lead", both.pk)


def test_a_name_changed_is_found_by_a_typo_of_its_new_word(rep, teams):
    customer = CustomerFactory(name="Petra Okonkwo", owner=rep)
    index(customer)
    Customer.objects.filter(pk=customer.pk).update(name="Petra Szymanska")
    index(customer)
    assert found(rep, "Szymansk") != [] and found(rep, "Szymanksa") == [("lead", customer.pk)]
    assert found(rep, "Okonkow") == []  # the old word is still known, its name is gone


def test_a_typo_typed_with_its_accent_is_found_too(rep, muller):
    assert found(rep, "Müler") == [("customer", muller.pk)]


@pytest.mark.parametrize("kind", ["customer", "deal"])
def test_an_entry_whose_record_is_gone_is_shown_to_nobody_not_even_an_admin(
    rep, admin_user, teams, kind
):
    """Entries have no constraint in the database (search.models): one may outlive its
    record a while (an import that rolled back, search.alongside; raw SQL)."""
    from django.db import connection

    customer = CustomerFactory(owner=rep, name="Vanishing Vole", lifecycle_stage="customer")
    deal = SaleFactory(customer=customer, assigned_to=rep, title="Vanishing Vole deal")
    index(customer, deal)
    assert len(found(admin_user, "vanishing vole")) == 2
    with connection.cursor() as cursor:
        if kind == "customer":
            cursor.execute("DELETE FROM sales_sale WHERE id = %s", [deal.pk])
            cursor.execute("DELETE FROM customers_customer WHERE id = %s", [customer.pk])
        else:
            cursor.execute("DELETE FROM sales_sale WHERE id = %s", [deal.pk])
    assert SearchEntry.objects.filter(record_id__in=[customer.pk, deal.pk]).count() == 2
    left = [] if kind == "customer" else [("customer", customer.pk)]
    assert found(admin_user, "vanishing vole") == left
    assert find(admin_user, "vanishing vole").total == len(left)
    assert found(rep, "vanishing vole") == left
