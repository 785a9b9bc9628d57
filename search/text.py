"""Turning a record's fields into the words the index holds, in Python (the same on
PostgreSQL and SQLite): phone numbers as digits, emails with their domain, tags as words."""

import re
import unicodedata

# ts_headline marks matches with these two characters (private use: never in real text,
# and removed from everything indexed); the template escapes the snippet, then turns them
# into <mark> and </mark>.
MARK_START = "\ue000"
MARK_STOP = "\ue001"
# ts_headline takes "<...>" for an HTML tag and drops it: the snippet's text goes in with
# these two stand-ins for "<" and ">", which the template turns back (then escapes).
ANGLES = "\ue002\ue003"
_UNSAFE = re.compile(f"[\x00{MARK_START}{MARK_STOP}{ANGLES}]")

BODY_CHARS = 100_000  # notes and activities of one record kept searchable
PHONE_MIN_DIGITS = 4  # the shortest piece of a number one may type ("…4567")
_PHONE_RUN = re.compile(r"\+?\(?\d[\d\s().\-/]*\d")
# Whitespace other than the plain space, which a pasted number may hold (a no-break or
# narrow no-break space in "+33 1 23 45 67 89", a line break): read as a space before the
# patterns below, here and in search.bulk's SQL, whose regular expressions would not take
# them for spaces as Python's do.
PHONE_SPACES = (
    "\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_TO_SPACE = str.maketrans(PHONE_SPACES, " " * len(PHONE_SPACES))
# "+49 30 …", "0044 (0)20 …": a country code written apart from the number, and a trunk
# zero in brackets after it; the rest is the number as dialled at home. (Written without
# separators, "+4930…", the country code's length is unknown: no national form.) ASCII
# digits only, like PostgreSQL's [0-9] in search.bulk.
_INTERNATIONAL = re.compile(
    r"^ *(?:\+|00) *([0-9]{1,3})(?:[ .\-/]+|(?=\())(?:\(0\))?(.*)$", re.ASCII
)
# An extension after the number ("… ext. 12", "… x12") is left out of its words.
_EXTENSION = re.compile(r" *(?:ext\.?|extension|x|#) *[0-9]+ *$", re.IGNORECASE | re.ASCII)
# The reversed digits are one word with these characters before them (the parser reads
# "0r6372882555" as one word of letters and digits), which no word typed begins with: a
# code such as "R6" must not find every number ending in 6.
PHONE_SUFFIX_MARK = "0r"
_PHONE_SUFFIX_WORD = re.compile(rf"(?<!\S){PHONE_SUFFIX_MARK}[0-9]+(?!\S)")


def clean(text: str | None, limit: int | None = None) -> str:
    text = _UNSAFE.sub(" ", text or "")
    return text[:limit] if limit else text


def fold(text: str) -> str:
    """Lower-case without accents ("Müller" -> "muller"), like crm_unaccent(lower(...))."""
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return text.replace("ß", "ss").replace("æ", "ae").replace("ø", "o").replace("ł", "l")


def phone_digits(phone: str) -> str:
    """The number's digits without leading zeros: "+49 (030) 123-45" -> "4903012345"."""
    return re.sub(r"[^0-9]", "", phone or "").lstrip("0")


def phone_terms(phone: str) -> list[str]:
    """A few words for a number, whatever its format: its digits; after a country code
    written apart, the national digits and, when a "(0)" stood between them, the digits
    without it; all found by any beginning typed. Then its digits reversed after
    PHONE_SUFFIX_MARK, which a query's digits reversed begin whenever they end the number
    (phone_query_alternatives): "4567", "123 4567", "(030) 123-4567".

    Not every tail of the digits, as before: each was a word of its own that no other
    record shares, and a GIN index pays for each distinct word (a 50,000-row import spent
    more on eight tails a number than on all its other words)."""
    phone = _EXTENSION.sub("", (phone or "").translate(_TO_SPACE))
    digits = phone_digits(phone)
    if len(digits) < PHONE_MIN_DIGITS:
        return []
    terms = [digits]
    international = _INTERNATIONAL.match(phone)
    if international:
        national = phone_digits(international.group(2))
        joined = phone_digits(international.group(1) + national)
        for term in (joined, national):
            if len(term) >= PHONE_MIN_DIGITS and term not in terms:
                terms.append(term)
    return [*terms, PHONE_SUFFIX_MARK + digits[::-1]]


def phone_query_alternatives(word: str) -> list[str]:
    """What a word typed into the box also is, when it is the digits of a number's end: the
    reversed form phone_terms indexes ("4567" -> "0r7654")."""
    if len(word) >= PHONE_MIN_DIGITS and word.isascii() and word.isdigit():
        return [PHONE_SUFFIX_MARK + word[::-1]]
    return []


def without_phone_suffixes(text: str) -> str:
    """The text without the reversed digits of phone_terms: the embedded mode's substring
    search finds a number's end in its digits, and would find the reversed ones too."""
    return _PHONE_SUFFIX_WORD.sub(" ", text)


def email_terms(email: str) -> list[str]:
    """The address, its domain and its parts: "anna@mueller.de" is found by "mueller.de",
    "mueller" and "anna"."""
    email = (email or "").strip().lower()
    if "@" not in email:
        return [email] if email else []
    local, _, domain = email.partition("@")
    return [email, domain, *re.split(r"[._+\-]", local), *domain.split(".")]


_HOST = re.compile(r"^(?:[a-z][a-z0-9+.\-]*:)?(?://)?(?:[^@/]*@)?([^/:?#\s]+)")


def website_terms(website: str) -> list[str]:
    """The host without "www." and its parts (search.bulk reads it with the same pattern)."""
    found = _HOST.match((website or "").lower())
    host = re.sub(r"^www\.", "", found.group(1)) if found else ""
    return [host, *host.split(".")] if host else []


def tag_field(names: list[str]) -> str:
    """ " vip key-account ": tag:vip matches " vip " exactly."""
    return f" {' '.join(fold(name).replace(' ', '-') for name in names)} " if names else ""


def join(*parts) -> str:
    words: list[str] = []
    for part in parts:
        if isinstance(part, list | tuple):
            words.extend(str(p) for p in part if p)
        elif part:
            words.append(str(part))
    return clean(" ".join(words))


def phone_runs_to_digits(query: str) -> str:
    """A phone number typed with spaces, dashes or brackets becomes one digit string, so it
    is one term ("030 123-4567" -> "301234567")."""

    def collapse(match: re.Match) -> str:
        digits = phone_digits(match.group(0))
        return digits if len(digits) >= PHONE_MIN_DIGITS else match.group(0)

    return _PHONE_RUN.sub(collapse, query)
