"""The Isometric clients a process keeps, one per account, shared by its threads."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from portal.models import Clients
from tests.factories import make_account

pytestmark = pytest.mark.django_db


def test_threads_share_one_client_per_account() -> None:
    first, second = make_account("First"), make_account("Second")
    clients = Clients()

    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda n: clients.get(first if n % 2 else second), range(64)))

    assert len({id(client) for client in got}) == 2
    clients.close()


def test_changed_credentials_get_a_new_client() -> None:
    account = make_account("Kilns Ltd")
    clients = Clients()
    before = clients.get(account)

    account.set_credentials(client_secret="another-client-secret")
    account.save()

    assert clients.get(account) is not before
    assert clients.get(account) is clients.get(account)
    clients.close()
