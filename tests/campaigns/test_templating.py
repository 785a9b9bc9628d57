import re

import pytest

from campaigns import templating
from campaigns.services import template_save
from campaigns.templating import (
    SubstitutionPlan,
    apply_substitutions,
    render,
    template_errors,
    variables_used,
)
from crm.errors import PermissionDenied, ValidationFailed

VALUES = {
    "first_name": "Bob",
    "last_name": "<b>Baker</b>",
    "full_name": "Bob <b>Baker</b>",
    "email": "bob@b.example",
    "company": "B & Co",
    "job_title": 'The "Boss"',
    "region": "Europe, Middle East & Africa",
    "owner_name": "Rita Rep",
    "owner_email": "rita@example.com",
    "unsubscribe_url": "https://crm.example/u/abc?x=1&y=2",
    "recommended_document_title": "Logistics case study",
    "recommended_document_url": "https://crm.example/d/token/",
}

# Ways out of a placeholder-only language that a full template engine would allow.
ESCAPES = [
    "{{ settings.SECRET_KEY }}",
    "{{ customer.owner.password }}",
    "{{ ''.__class__.__mro__ }}",
    '{% include "/etc/passwd" %}',
    "{% debug %}",
    "{% load static %}",
    "{{ first_name.__class__ }}",
    "{{ first_name|safe }}",
    "{{ first_name|upper }}",
    '{{ first_name|default:"x"|safe }}',
    "{{ first_name",
    "{% debug",
    "{{ FIRST_NAME }}",
    "{{ }}",
    "{# comment #}{{ request }}",
]


# Rendering ---------------------------------------------------------------------------------


def test_every_known_variable_renders():
    text = " ".join(f"{{{{ {name} }}}}" for name in templating.VARIABLES)
    assert render(text, VALUES, html=False) == " ".join(
        VALUES[name] for name in templating.VARIABLES
    )


@pytest.mark.parametrize(
    "text", ["{{first_name}}", "{{ first_name }}", "{{\n  first_name\n}}", "{{\tfirst_name }}"]
)
def test_whitespace_inside_the_braces_does_not_matter(text):
    assert template_errors(text) == []
    assert render(text, VALUES, html=False) == "Bob"


def test_html_values_are_escaped_but_the_templates_own_markup_is_not():
    text = '<p class="x">{{ full_name }} of {{ company }}</p><a href="{{ unsubscribe_url }}">'
    assert render(text, VALUES, html=True) == (
        '<p class="x">Bob &lt;b&gt;Baker&lt;/b&gt; of B &amp; Co</p>'
        '<a href="https://crm.example/u/abc?x=1&amp;y=2">'
    )


def test_quotes_in_values_are_escaped_in_html_so_attributes_cannot_be_broken_out_of():
    assert render('<a title="{{ job_title }}">', VALUES, html=True) == (
        '<a title="The &quot;Boss&quot;">'
    )


def test_text_values_are_not_escaped():
    assert render("{{ full_name }} of {{ company }}", VALUES, html=False) == (
        "Bob <b>Baker</b> of B & Co"
    )


def test_default_is_used_for_a_missing_or_empty_value():
    text = 'Hi {{ first_name|default:"there" }}'
    assert render(text, {}, html=False) == "Hi there"
    assert render(text, {"first_name": ""}, html=False) == "Hi there"
    assert render(text, {"first_name": None}, html=False) == "Hi there"
    assert render(text, {"first_name": "Ann"}, html=False) == "Hi Ann"
    assert render('{{ company | default : "your team" }}', {}, html=False) == "your team"


def test_a_default_is_escaped_in_html_too():
    assert render('{{ company|default:"A & B" }}', {}, html=True) == "A &amp; B"
    assert render('{{ company|default:"A & B" }}', {}, html=False) == "A & B"


def test_a_missing_value_without_default_renders_as_nothing():
    assert render("[{{ job_title }}]", {}, html=True) == "[]"


def test_values_are_never_rendered_as_templates():
    values = {"first_name": "{{ email }}", "company": '{% include "/etc/passwd" %}'}
    assert render("{{ first_name }} {{ company }}", values, html=False) == (
        '{{ email }} {% include "/etc/passwd" %}'
    )


# Checking at save --------------------------------------------------------------------------


def test_a_valid_template_has_no_errors_and_lists_its_variables():
    subject = "News for {{ company }}"
    html = '<p>Hi {{ first_name|default:"there" }}</p>{{ company }}'
    text = "Unsubscribe: {{ unsubscribe_url }}"
    assert [template_errors(t) for t in (subject, html, text)] == [[], [], []]
    assert variables_used(subject, html, text) == ["company", "first_name", "unsubscribe_url"]


def test_a_plain_text_without_placeholders_is_fine():
    assert template_errors("Hello, world. 100% {sure} } {") == []


def test_an_unknown_variable_is_reported_by_name():
    assert template_errors("Hi {{ nickname }}") == ["Unknown variable “nickname”."]
    assert variables_used("Hi {{ nickname }}") == []


def test_each_error_is_reported_once():
    assert template_errors("{{ nickname }} {{ nickname }}") == ["Unknown variable “nickname”."]


@pytest.mark.parametrize("text", ESCAPES)
def test_escape_attempts_are_reported_at_save(text):
    assert template_errors(text), text


@pytest.mark.parametrize("text", ESCAPES)
def test_escape_attempts_render_to_nothing_if_they_reach_a_send(text, settings):
    settings.SECRET_KEY = "sekrit-key-value"
    values = {**VALUES, "settings": "LEAK", "customer": "LEAK", "request": "LEAK"}
    for html in (True, False):
        out = render(f"a{text}b", values, html=html)
        assert "sekrit" not in out and "LEAK" not in out
        assert "class" not in out and "root:" not in out and "Bob" not in out
        # Nothing is evaluated: what is left is at most the author's own literal text.
        assert out in ("ab", f"a{text}b", "a{# comment #}b"), out


def test_tags_are_removed_and_placeholders_around_them_still_render():
    text = '{{ first_name }}{% include "/etc/passwd" %}{{ company }}'
    assert render(text, VALUES, html=False) == "BobB & Co"
    assert "Template tags" in template_errors(text)[0]


def test_an_unclosed_placeholder_is_reported():
    assert template_errors("Hi {{ first_name") == ["A “{{” is not closed with “}}”."]
    assert template_errors("{{ first_name }} and {{ company") == ["A “{{” is not closed with “}}”."]


def test_an_unclosed_tag_is_reported():
    assert template_errors("Hi {% debug") == ["A “{%” is not closed with “%}”."]


def test_a_default_containing_braces_or_quotes_is_refused():
    assert template_errors('{{ first_name|default:"{{ email }}" }}')
    assert template_errors('{{ first_name|default:"a"b" }}')


# SubstitutionPlan ----------------------------------------------------------------------------


def _plan(**kwargs):
    texts = {
        "subject": "News for {{ company }}",
        "html": "<p>{{ company }} {{ first_name }}</p>",
        "text": "{{ company }} {{ first_name }}",
    }
    return SubstitutionPlan(**{**texts, **kwargs})


def _keys(text):
    return re.findall(r"\[\[[0-9a-f]+-\d+\]\]", text)


def test_html_and_text_get_different_keys_for_the_same_variable():
    plan = _plan()
    html_keys, text_keys = _keys(plan.html), _keys(plan.text)
    assert len(html_keys) == len(text_keys) == 2
    assert not set(html_keys) & set(text_keys)
    # The subject is plain text: it shares the text body's key for {{ company }}.
    assert _keys(plan.subject) == [text_keys[0]]


def test_the_same_placeholder_twice_in_one_body_gets_one_key():
    plan = _plan(html="{{ company }}{{company}}", text="")
    first, second = _keys(plan.html)
    assert first == second


def test_substitution_values_are_escaped_for_html_only():
    plan = _plan()
    subs = plan.substitutions(VALUES)
    assert apply_substitutions(plan.html, subs) == "<p>B &amp; Co Bob</p>"
    assert apply_substitutions(plan.text, subs) == "B & Co Bob"
    assert apply_substitutions(plan.subject, subs) == "News for B & Co"
    # What the plan produces is what render() produces for the same recipient.
    html = "<p>{{ company }} {{ first_name }}</p>"
    assert apply_substitutions(plan.html, subs) == render(html, VALUES, html=True)


def test_defaults_and_missing_values_in_substitutions():
    plan = _plan(html='{{ first_name|default:"<there>" }}', text='{{ first_name|default:"x" }}')
    subs = plan.substitutions({})
    assert apply_substitutions(plan.html, subs) == "&lt;there&gt;"
    assert apply_substitutions(plan.text, subs) == "x"
    assert apply_substitutions(plan.subject, subs) == "News for "


def test_escape_attempts_in_a_plan_substitute_nothing():
    plan = _plan(html="{{ settings.SECRET_KEY }}{% debug %}{{ x.__class__ }}", text="")
    subs = plan.substitutions({**VALUES, "settings": "LEAK"})
    assert apply_substitutions(plan.html, subs) == ""
    assert set(subs.values()) <= {"B & Co", ""}


def test_a_plan_has_a_random_marker():
    assert _keys(_plan().html)[0] != _keys(_plan().html)[0]


def test_template_text_that_looks_like_a_key_is_left_alone():
    plan = _plan(html="[[x-0]] {{ company }} [[x-1]]", text="")
    assert apply_substitutions(plan.html, plan.substitutions(VALUES)) == (
        "[[x-0]] B &amp; Co [[x-1]]"
    )


def test_the_marker_never_collides_with_the_templates_text(monkeypatch):
    # Even when the random marker happens to occur in the template, another is drawn.
    markers = iter(["deadbeef", "deadbeef", "cafef00d"])
    monkeypatch.setattr(templating.secrets, "token_hex", lambda n: next(markers))
    plan = _plan(html="[[deadbeef-0]] {{ company }}", text="{{ first_name }}")
    assert apply_substitutions(plan.html, plan.substitutions(VALUES)) == (
        "[[deadbeef-0]] B &amp; Co"
    )


def test_apply_substitutions_is_a_single_pass():
    plan = _plan(html="{{ first_name }}|{{ company }}", text="")
    first, second = _keys(plan.html)
    values = {"first_name": second, "company": first}  # each value is the other's key
    assert apply_substitutions(plan.html, plan.substitutions(values)) == f"{second}|{first}"


def test_apply_substitutions_prefers_the_longest_key():
    assert apply_substitutions("-k-kk-", {"k": "1", "kk": "2"}) == "-1-2-"
    assert apply_substitutions("-k-kk-", {"kk": "2", "k": "1"}) == "-1-2-"
    assert apply_substitutions("unchanged", {}) == "unchanged"


# template_save ---------------------------------------------------------------------------


def _data(**overrides):
    return {
        "name": "Welcome",
        "category": "onboarding",
        "subject": "Welcome, {{ first_name }}",
        "html_body": "<p>Hi {{ first_name }}</p>",
        "text_body": "Hi {{ first_name }}. {{ unsubscribe_url }}",
        **overrides,
    }


@pytest.mark.django_db
def test_template_save_stores_a_good_template_with_its_variables(manager):
    template = template_save(actor=manager, data=_data())
    assert template.pk and template.variables == ["first_name", "unsubscribe_url"]


@pytest.mark.django_db
def test_template_save_refuses_bad_templates_listing_every_error(manager):
    from campaigns.models import EmailTemplate

    data = _data(
        subject="{{ settings.SECRET_KEY }}",
        html_body='{% include "/etc/passwd" %}{{ nickname }}',
        text_body="{{ first_name",
    )
    with pytest.raises(ValidationFailed) as error:
        template_save(actor=manager, data=data)
    message = error.value.message
    assert "Subject: “{{ settings.SECRET_KEY }}” is not a variable" in message
    assert "Html body: Template tags" in message
    assert "Html body: Unknown variable “nickname”." in message
    assert "Text body: A “{{” is not closed" in message
    assert not EmailTemplate.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("text", ESCAPES)
def test_template_save_refuses_each_escape_attempt(manager, text):
    with pytest.raises(ValidationFailed):
        template_save(actor=manager, data=_data(html_body=text))


@pytest.mark.django_db
def test_template_save_is_for_managers(rep):
    with pytest.raises(PermissionDenied):
        template_save(actor=rep, data=_data())


def test_a_marketing_body_without_the_unsubscribe_link_gets_it_in_a_footer():
    from campaigns.templating import with_unsubscribe_link

    html, text = with_unsubscribe_link(html="<html><body><p>Hi</p></body></html>", text="Hi")
    assert html == (
        '<html><body><p>Hi</p><p style="font-size:12px;color:#666">'
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
    )
    assert text.endswith("Unsubscribe: {{ unsubscribe_url }}")
    placed = "<p>Hi <a href='{{ unsubscribe_url }}'>leave</a></p>"
    assert with_unsubscribe_link(html=placed, text="Bye {{ unsubscribe_url }}") == (
        placed,
        "Bye {{ unsubscribe_url }}",
    )
