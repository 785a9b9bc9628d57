import pytest

from search.query import parse
from search.text import phone_query_alternatives, phone_terms


def test_words_phrases_exclusions_and_or_groups():
    parsed = parse('acme "annual contract" -churned or globex')
    assert [[(t.text, t.phrase, t.negated) for t in g] for g in parsed.groups] == [
        [("acme", False, False), ("annual contract", True, False), ("churned", False, True)],
        [("globex", False, False)],
    ]


def test_field_filters_are_taken_out_of_the_words():
    parsed = parse("type:deals owner:me stage:Proposal tag:VIP renewal type:spaceship")
    assert parsed.kinds == ["deal"]
    assert parsed.owner_me
    assert parsed.stages == ["proposal"]
    assert parsed.tags == ["vip"]
    assert parsed.unknown_filters == ["type:spaceship"]
    assert parsed.words() == ["renewal"]


def test_a_phone_number_typed_with_separators_is_one_term_of_digits():
    assert parse("+49 (030) 123-4567").words() == ["490301234567"]
    assert parse("030 123 4567").words() == ["301234567"]


def test_hostile_input_is_reduced_to_safe_words():
    assert not parse("'").has_terms
    assert not parse("&|!:*()").has_terms
    assert not parse("\x00").has_terms
    assert parse("o'brien").words() == ["o", "brien"]
    long = parse("x" * 10_000)
    assert all(len(word) <= 100 for word in long.words())
    for group in parse("a' & b | !c :* (d)").groups:
        for term in group:
            assert not set(term.text) & set("'&|!:*()\\")


def test_a_group_of_exclusions_only_is_dropped():
    assert not parse("-spam").has_terms
    assert parse("-spam or acme").words() == ["acme"]


@pytest.mark.parametrize(
    ("phone", "terms"),
    [
        ("+49 30 123-4567", ["49301234567", "301234567", "0r76543210394"]),
        ("+44 (0)20 7946-0958 ext. 12",
         ["4402079460958", "442079460958", "2079460958", "0r8590649702044"]),
        ("0049 (30) 1234", ["49301234", "301234", "0r43210394"]),
        ("(030) 1234-567", ["301234567", "0r765432103"]),
        ("+4930123", ["4930123", "0r3210394"]),  # the country code's length is unknown
        ("555-0199 x204", ["5550199", "0r9910555"]),
        ("555-0199 EXT 5", ["5550199", "0r9910555"]),
        ("+33\u202f1\u202f23\u202f45\u202f67\u202f89",
         ["33123456789", "123456789", "0r98765432133"]),
        ("+49\xa0(0)30 1234567",
         ["490301234567", "49301234567", "301234567", "0r765432103094"]),
        ("+49 30\n1234567", ["49301234567", "301234567", "0r76543210394"]),
        ("+44(0)20 7946 0958", ["4402079460958", "442079460958", "2079460958", "0r8590649702044"]),
        ("12", []),
        ("", []),
    ],
)  # fmt: skip
def test_a_phone_number_is_indexed_as_its_digits_national_digits_and_reversed(phone, terms):
    assert phone_terms(phone) == terms


def test_digits_typed_also_match_the_end_of_a_number():
    assert phone_query_alternatives("4567") == ["0r7654"]
    assert phone_query_alternatives("456") == []
    assert phone_query_alternatives("45a7") == []
