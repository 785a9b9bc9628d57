"""Browsers ask for /favicon.ico on pages that do not link the icon (Django admin)."""


def test_the_favicon_is_found_where_browsers_look(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
