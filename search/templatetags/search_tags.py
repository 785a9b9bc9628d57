from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe

from search.text import ANGLES, MARK_START, MARK_STOP

register = template.Library()


@register.filter
def marked(text: str) -> str:
    """Escape the text (a note may hold "<script>"), then turn the match markers that
    ts_headline put around the matches into <mark> elements."""
    text = (text or "").replace(ANGLES[0], "<").replace(ANGLES[1], ">")
    escaped = escape(text).replace(MARK_START, "<mark>").replace(MARK_STOP, "</mark>")
    return mark_safe(escaped)  # noqa: S308 - escaped just above
