"""403, 404 and 500 in the portal's layout, each with a way back."""

import pytest
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import path
from django.views.defaults import server_error

from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_a_page_not_found_is_the_portals_with_a_way_back(client: Client) -> None:
    client.force_login(make_user("olivia", operator=True))

    response = client.get("/batches/999999/")

    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>Page not found</h1>" in html
    assert 'class="fold menu"' in html, "the portal's own layout, its menu included"
    assert '<a class="button primary" href="/">Back to the start</a>' in html
    assert '<a class="button" href="/batches/">All batches</a>' in html


def test_a_page_not_found_before_login_offers_only_the_start(client: Client) -> None:
    response = client.get("/no/such/page/")

    assert response.status_code == 404
    html = response.content.decode()
    assert "Back to the start" in html
    assert "All batches" not in html and "Log out" not in html


def test_a_refused_page_is_the_portals_with_a_way_back(client: Client) -> None:
    client.force_login(make_user("nadia"))

    response = client.get("/batches/")

    assert response.status_code == 403
    assert 'class="fold menu"' in response.content.decode()
    assert "Back to the start" in response.content.decode()


def test_a_server_error_page_needs_no_context_and_no_database() -> None:
    """Django renders 500.html with no context at all; the database may be what failed."""
    with CaptureQueriesContext(connection) as queries:
        response = server_error(RequestFactory().get("/batches/"))

    assert response.status_code == 500
    html = response.content.decode()
    assert "<h1>Something went wrong</h1>" in html
    assert 'href="/static/css/portal.css"' in html
    assert '<a class="button primary" href="/">Back to the start</a>' in html
    assert len(queries) == 0


@login_not_required
def fail(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


urlpatterns = [path("fail/", fail)]


@override_settings(ROOT_URLCONF=__name__)
def test_a_view_that_fails_answers_with_the_server_error_page(client: Client) -> None:
    client.raise_request_exception = False

    response = client.get("/fail/")

    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()
