from search.query import parse


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
