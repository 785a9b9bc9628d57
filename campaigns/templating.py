"""The template language of user-authored emails: `{{ variable }}` and
`{{ variable|default:"text" }}`, nothing else.

Why not Django's or Jinja's engine: a template written by any manager is rendered for every
recipient, and a full engine lets it walk from a value to its object, its class, settings or
files ({% debug %}, {% include %}, attribute lookups). Plain placeholders have nothing to
escape through: a template can name only the variables below, each a string, and anything
else is reported when the template is saved and rendered as nothing if it ever reaches a
send. The same placeholders map one to one onto SendGrid's per-recipient substitutions, so a
100,000-recipient campaign sends its body once per 1,000 recipients.
"""

import re
import secrets
from dataclasses import dataclass
from html import escape

VARIABLES = {
    "first_name": "The recipient's first name",
    "last_name": "The recipient's last name",
    "full_name": "The recipient's full name",
    "email": "The recipient's email address",
    "company": "The recipient's company",
    "job_title": "The recipient's job title",
    "region": "The recipient's region",
    "owner_name": "The name of the rep who owns the customer",
    "owner_email": "The email of the rep who owns the customer",
    "unsubscribe_url": "The recipient's one-click unsubscribe link",
    "recommended_document_title": "The title of the document recommended for the recipient "
    "(warm lead emails; empty elsewhere)",
    "recommended_document_url": "Its tracked share link (warm lead emails; empty elsewhere)",
}

PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
EXPRESSION = re.compile(r'^\s*([a-z_]+)\s*(?:\|\s*default\s*:\s*"([^"{}]*)"\s*)?$')
TAG = re.compile(r"\{%.*?%\}", re.DOTALL)


@dataclass(frozen=True)
class Placeholder:
    variable: str
    default: str = ""


def template_errors(text: str) -> list[str]:
    """What is wrong with a template text: unknown variables, unsupported syntax."""
    errors = []
    if TAG.search(text):
        errors.append("Template tags ({% … %}) are not supported; use {{ variable }} only.")
    for match in PLACEHOLDER.finditer(text):
        parsed = EXPRESSION.match(match.group(1))
        if parsed is None:
            errors.append(
                f"“{match.group(0)}” is not a variable; write {{{{ name }}}} or "
                f'{{{{ name|default:"text" }}}}.'
            )
        elif parsed.group(1) not in VARIABLES:
            errors.append(f"Unknown variable “{parsed.group(1)}”.")
    if "{{" in PLACEHOLDER.sub("", text):
        errors.append("A “{{” is not closed with “}}”.")
    if "{%" in TAG.sub("", text):
        errors.append("A “{%” is not closed with “%}”.")
    return list(dict.fromkeys(errors))


def variables_used(*texts: str) -> list[str]:
    found = []
    for text in texts:
        for match in PLACEHOLDER.finditer(text):
            parsed = EXPRESSION.match(match.group(1))
            if parsed and parsed.group(1) in VARIABLES:
                found.append(parsed.group(1))
    return sorted(set(found))


def _placeholder(expression: str) -> Placeholder | None:
    parsed = EXPRESSION.match(expression)
    if parsed is None or parsed.group(1) not in VARIABLES:
        return None
    return Placeholder(parsed.group(1), parsed.group(2) or "")


def _value(placeholder: Placeholder | None, values: dict[str, str]) -> str:
    if placeholder is None:
        return ""
    return str(values.get(placeholder.variable) or "") or placeholder.default


def render(text: str, values: dict[str, str], *, html: bool) -> str:
    """`text` with every placeholder replaced by its value, HTML-escaped when `html`."""
    text = TAG.sub("", text)

    def replace(match: re.Match) -> str:
        value = _value(_placeholder(match.group(1)), values)
        return escape(value) if html else value

    return PLACEHOLDER.sub(replace, text)


class SubstitutionPlan:
    """A template turned into a body with substitution keys, plus the per-recipient values of
    those keys: what SendGrid's `substitutions` need. HTML and text bodies get different
    keys because only the HTML values are escaped."""

    def __init__(self, *, subject: str, html: str, text: str):
        self._keys: dict[tuple[Placeholder | None, bool], str] = {}
        # A random marker per plan, absent from the template, so that no text in a template
        # can ever collide with a key.
        self._marker = secrets.token_hex(4)
        while any(f"[[{self._marker}-" in t for t in (subject, html, text)):
            self._marker = secrets.token_hex(4)
        self.subject = self._keyed(subject, html=False)
        self.html = self._keyed(html, html=True)
        self.text = self._keyed(text, html=False)

    def _keyed(self, text: str, *, html: bool) -> str:
        text = TAG.sub("", text)

        def replace(match: re.Match) -> str:
            slot = (_placeholder(match.group(1)), html)
            if slot not in self._keys:
                self._keys[slot] = f"[[{self._marker}-{len(self._keys)}]]"
            return self._keys[slot]

        return PLACEHOLDER.sub(replace, text)

    def substitutions(self, values: dict[str, str]) -> dict[str, str]:
        result = {}
        for (placeholder, html), key in self._keys.items():
            value = _value(placeholder, values)
            result[key] = escape(value) if html else value
        return result


def apply_substitutions(text: str, substitutions: dict[str, str]) -> str:
    """What the provider does with `substitutions`; the local outbox does it itself. One
    pass, longest key first: a value is never searched for keys."""
    if not substitutions:
        return text
    keys = sorted(substitutions, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(key) for key in keys))
    return pattern.sub(lambda match: substitutions[match.group(0)], text)


TEXT_FOOTER = "\n\n--\nUnsubscribe: {{ unsubscribe_url }}"
HTML_FOOTER = (
    '<p style="font-size:12px;color:#666"><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
)


def with_unsubscribe_link(*, html: str, text: str) -> tuple[str, str]:
    """The bodies of a marketing email, each with the unsubscribe link: a template that does
    not place {{ unsubscribe_url }} itself gets it in a footer (the List-Unsubscribe headers
    go along regardless, but not every mail client shows them)."""
    if "unsubscribe_url" not in variables_used(text):
        text = f"{text.rstrip()}{TEXT_FOOTER}"
    if html and "unsubscribe_url" not in variables_used(html):
        closing = html.lower().rfind("</body>")
        html = html[:closing] + HTML_FOOTER + html[closing:] if closing >= 0 else html + HTML_FOOTER
    return html, text
