"""Who a request belongs to: the session and the user, as the portal reads them."""

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from tests.factories import make_user

PAGE = "/batches/"


def logged_in(client: Client, **user_fields: Any) -> Client:
    client.force_login(make_user(operator=True, **user_fields))
    return client


@pytest.mark.django_db
def test_a_logged_in_user_stays_logged_in_from_page_to_page(client: Client) -> None:
    logged_in(client)
    assert client.get(PAGE).status_code == 200
    assert client.get(PAGE).status_code == 200


@pytest.mark.django_db
def test_an_expired_session_sends_the_user_to_log_in(client: Client) -> None:
    logged_in(client)
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.django_db
def test_a_session_unknown_to_the_database_sends_the_user_to_log_in(client: Client) -> None:
    logged_in(client)
    Session.objects.all().delete()
    assert client.get(PAGE)["Location"].startswith("/login/")


@pytest.mark.django_db
def test_a_deactivated_user_is_logged_out(client: Client) -> None:
    logged_in(client, username="leaver")
    User.objects.filter(username="leaver").update(is_active=False)
    assert client.get(PAGE)["Location"].startswith("/login/")


@pytest.mark.django_db
def test_a_deleted_user_is_logged_out(client: Client) -> None:
    logged_in(client, username="gone")
    User.objects.filter(username="gone").delete()
    assert client.get(PAGE)["Location"].startswith("/login/")


@pytest.mark.django_db
def test_the_user_is_read_with_their_fields_as_python_values(client: Client) -> None:
    """Read with raw SQL, the user's dates and flags must still be what the ORM gives."""
    user = make_user(operator=True, is_staff=True)
    client.force_login(user)
    response = client.get(PAGE)
    request_user = response.wsgi_request.user
    assert request_user.pk == user.pk
    assert request_user.is_staff is True
    assert request_user.is_superuser is False
    assert request_user.date_joined == user.date_joined
