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

PHONE_MIN_DIGITS = 4  # the shortest tail of a number one may type ("…4567")
_PHONE_RUN = re.compile(r"\+?\(?\d[\d\s().\-/]*\d")


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
    return re.sub(r"\D", "", phone or "").lstrip("0")


def phone_terms(phone: str) -> list[str]:
    """Every tail of the digits of at least PHONE_MIN_DIGITS: a number typed with its
    country code, with a trunk zero, or only its last digits is a prefix of one of them."""
    digits = phone_digits(phone)
    if len(digits) < PHONE_MIN_DIGITS:
        return []
    tails = [digits[i:] for i in range(len(digits) - PHONE_MIN_DIGITS + 1)]
    trunk = re.sub(r"\D", "", phone or "")
    return [*tails, trunk] if trunk != digits else tails


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
