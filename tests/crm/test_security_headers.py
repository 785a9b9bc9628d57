"""Every page carries a Content-Security-Policy that allows scripts only from the site
itself, and no template has an inline script or event handler it would block."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

pytestmark = pytest.mark.django_db

INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)


def test_pages_send_a_content_security_policy(rep_client):
    response = rep_client.get(reverse("customers:list"))
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]


def test_the_login_page_has_it_too(client):
    assert "script-src 'self'" in client.get(reverse("login"))["Content-Security-Policy"]


def test_no_template_has_an_inline_script_or_handler():
    offenders = []
    for path in Path(settings.BASE_DIR).glob("**/templates/**/*.html"):
        if ".venv" in path.parts:
            continue
        text = path.read_text()
        if INLINE_HANDLER.search(text.replace("{% csrf_token %}", "")) or INLINE_SCRIPT.search(
            text
        ):
            offenders.append(str(path.relative_to(settings.BASE_DIR)))
    assert offenders == []
