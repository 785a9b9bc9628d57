"""Reading what a user typed into the box: web-search syntax, field filters, and the
PostgreSQL tsquery built from it.

    anna müller          both words, each as a prefix ("mül" finds "Müller")
    "annual contract"    the words in this order
    -churned             without this word (or -"a phrase")
    acme or globex       either side (OR works too)
    type:deal owner:me stage:proposal tag:vip     filters (type: customer, lead, deal,
                         document, task, template, campaign; owner: me)

Nothing typed reaches SQL as SQL: every word is reduced to letters, digits and the
characters of emails and hosts (@ . _ + -), then handed to to_tsquery as a quoted operand
in a query parameter; a phrase goes to phraseto_tsquery, which reads plain text. A phone
number typed with spaces or dashes is one term of its digits (search.text).
"""

import re
import unicodedata
from dataclasses import dataclass, field

from search import postgres
from search.models import Kind
from search.text import (
    PHONE_SUFFIX_MARK,
    fold,
    phone_query_alternatives,
    phone_runs_to_digits,
)

MAX_QUERY_CHARS = 300  # a 10,000-character paste is cut, not an error
MAX_TERMS = 12
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_FILTER = re.compile(r"^(type|owner|stage|tag):(.+)$", re.IGNORECASE)
_NOT_WORD = re.compile(r"[^\w@.+\-]+")
_EDGE = re.compile(r"^[@.+\-_]+|[@.+\-_]+$")
TYPE_ALIASES = {
    **{kind.value: kind.value for kind in Kind},
    **{f"{kind.value}s": kind.value for kind in Kind},
    "sale": Kind.DEAL.value,
    "sales": Kind.DEAL.value,
    "doc": Kind.DOCUMENT.value,
    "docs": Kind.DOCUMENT.value,
}


@dataclass(frozen=True)
class Term:
    text: str  # sanitised: safe inside a quoted tsquery operand
    phrase: bool = False
    negated: bool = False


@dataclass
class ParsedQuery:
    groups: list[list[Term]] = field(default_factory=list)  # OR of ANDs
    kinds: list[str] = field(default_factory=list)  # type: filters (any of)
    owner_me: bool = False
    stages: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    unknown_filters: list[str] = field(default_factory=list)

    @property
    def has_terms(self) -> bool:
        return bool(self.groups)

    @property
    def has_phrases(self) -> bool:
        return any(term.phrase for group in self.groups for term in group)

    @property
    def has_filters(self) -> bool:
        return bool(self.kinds or self.owner_me or self.stages or self.tags)

    def words(self) -> list[str]:
        """The positive words, for the typo fallback and "did you mean"."""
        return [
            word
            for group in self.groups
            for term in group
            if not term.negated
            for word in term.text.split()
        ]


def _sanitise(text: str) -> str:
    """Letters, digits and @ . _ + - inside a word; anything else separates words
    ("o'brien" -> "o brien", as the index's parser reads "O'Brien")."""
    words = (_EDGE.sub("", piece) for piece in _NOT_WORD.split(unicodedata.normalize("NFC", text)))
    return " ".join(word[:100] for word in words if word)


def parse(raw: str | None) -> ParsedQuery:
    raw = (raw or "").replace("\x00", " ")[:MAX_QUERY_CHARS]
    parsed = ParsedQuery()
    group: list[Term] = []
    groups = [group]
    count = 0
    for match in _TOKEN.finditer(phone_runs_to_digits(raw)):
        negated, phrase, word = match.group(1) == "-", match.group(2), match.group(3)
        if word is not None:
            if word.lower() == "or" or word == "|":
                group = []
                groups.append(group)
                continue
            found = _FILTER.match(word)
            if found:
                _add_filter(parsed, found.group(1).lower(), found.group(2))
                continue
            negated = word.startswith("-")
            text = _sanitise(word.lstrip("-"))
        else:
            text = _sanitise(phrase)
        if not text or count >= MAX_TERMS:
            continue
        count += 1
        group.append(Term(text=text, phrase=word is None and " " in text, negated=negated))
    # A group of exclusions only would match nearly everything: it needs a positive term.
    parsed.groups = [g for g in groups if any(not term.negated for term in g)]
    return parsed


def _add_filter(parsed: ParsedQuery, name: str, value: str) -> None:
    value = fold(value.strip().strip('"'))
    if name == "type" and value in TYPE_ALIASES:
        parsed.kinds.append(TYPE_ALIASES[value])
    elif name == "owner" and value == "me":
        parsed.owner_me = True
    elif name == "stage" and value:
        parsed.stages.append(value[:20])
    elif name == "tag" and value:
        parsed.tags.append(value.replace(" ", "-")[:50])
    else:
        parsed.unknown_filters.append(f"{name}:{value}"[:60])


# PostgreSQL ------------------------------------------------------------------------------


def names_tsquery_sql(parsed: ParsedQuery) -> tuple[str, list]:
    """The positive words and phrases in the simple configuration, for the names' own index
    (exclusions are left to the full tsquery, checked on the same entries)."""
    ors, params = [], []
    for group in parsed.groups:
        ands = []
        for term in group:
            if term.negated:
                continue
            if term.phrase:
                ands.append("phraseto_tsquery(%s::regconfig, %s)")
                params += [postgres.SIMPLE, term.text]
            else:
                ands.append("to_tsquery(%s::regconfig, %s)")
                params.append(postgres.SIMPLE)
                params.append(" & ".join(f"'{word}':*" for word in term.text.split()))
        ors.append("(" + " && ".join(ands) + ")")
    return "(" + " || ".join(ors) + ")", params


def _operand(word: str, exact: bool) -> str:
    """A word of the tsquery: as typed or as a prefix; digits also as the end of a phone
    number (search.text.phone_terms). A word that could begin the reversed digits of a
    number ("0", "0r…") is taken as typed: as a prefix it would find every number."""
    folded = word.lower()
    exact = exact or folded.startswith(PHONE_SUFFIX_MARK) or PHONE_SUFFIX_MARK.startswith(folded)
    typed = f"'{word}'" if exact else f"'{word}':*"
    ends = phone_query_alternatives(word)
    if not ends:
        return typed
    return "(" + " | ".join([typed, *(f"'{end}':*" for end in ends)]) + ")"


def tsquery_sql(
    parsed: ParsedQuery, loose: bool = False, exact: frozenset[str] = frozenset()
) -> tuple[str, list]:
    """The tsquery as SQL with its parameters: each word matched as a prefix, in the simple
    configuration (names, emails) or stemmed in the language's (prose).

    `exact`: words (folded) matched as themselves only, not as prefixes (search.selectors:
    a word that is itself common is first looked for as typed), unless excluded.

    `loose`: phrases as their words in any order, and no excluded phrase: what every entry
    matching the query matches, and the GIN index alone can tell (a phrase needs the
    positions in the entry's own tsvector, read from the table)."""
    language = postgres.language_configuration()
    ors = []
    params: list = []
    for group in parsed.groups:
        ands = []
        for term in group:
            if term.phrase and loose and term.negated:
                continue
            if term.phrase and loose:
                sql = "(plainto_tsquery(%s::regconfig, %s) || plainto_tsquery(%s::regconfig, %s))"
                params += [postgres.SIMPLE, term.text, language, term.text]
            elif term.phrase:
                sql = "(phraseto_tsquery(%s::regconfig, %s) || phraseto_tsquery(%s::regconfig, %s))"
                params += [postgres.SIMPLE, term.text, language, term.text]
            else:
                # (an excluded word stays a prefix: the query must not match more)
                operand = " & ".join(
                    _operand(word, exact=fold(word) in exact and not term.negated)
                    for word in term.text.split()
                )
                sql = "(to_tsquery(%s::regconfig, %s) || to_tsquery(%s::regconfig, %s))"
                params += [postgres.SIMPLE, operand, language, operand]
            ands.append(f"!!{sql}" if term.negated else sql)
        ors.append("(" + " && ".join(ands) + ")")
    return "(" + " || ".join(ors) + ")", params
