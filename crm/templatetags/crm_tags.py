from django import template
from django.utils.html import format_html

from crm.forms import person_name

register = template.Library()


@register.simple_tag(takes_context=True)
def sort_th(context, key: str, label: str, css_class: str = ""):
    """A sortable column header: toggles between ascending and descending on `key`."""
    current = context.get("sort") or ""
    base = context.get("sort_querystring") or ""
    if current == key:
        target, aria, arrow = f"-{key}", "ascending", " ▲"
    elif current == f"-{key}":
        target, aria, arrow = key, "descending", " ▼"
    else:
        target, aria, arrow = key, None, ""
    href = f"?{base}&sort={target}" if base else f"?sort={target}"
    if aria:
        return format_html(
            '<th class="{}" aria-sort="{}"><a href="{}" aria-sort="{}">{}{}</a></th>',
            css_class,
            aria,
            href,
            aria,
            label,
            arrow,
        )
    return format_html('<th class="{}"><a href="{}">{}</a></th>', css_class, href, label)


@register.filter
def person(user) -> str:
    return person_name(user)


@register.filter
def money(value, currency: str = ""):
    if value is None or value == "":
        return "—"
    return f"{currency + ' ' if currency else ''}{value:,.2f}"


@register.filter
def get_field(form, name: str):
    """A form's bound field by name, for forms whose fields are built at run time."""
    return form[name]


@register.filter
def get_item(mapping, key):
    """mapping[key] in a template (None when missing)."""
    return mapping.get(key) if hasattr(mapping, "get") else None
