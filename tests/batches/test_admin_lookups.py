"""The batch admin's changelists answer a bad search or filter by going back to the list."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["productionbatch", "facility", "feedstocktype"])
@pytest.mark.parametrize("param", ["q", "sync_status__exact", "account__id__exact"])
def test_a_nul_in_a_search_or_filter_is_a_bad_lookup(
    admin_client: Client, model: str, param: str
) -> None:
    """PostgreSQL refuses NUL in any text, so it must not reach the database (on both)."""
    url = f"/admin/batches/{model}/"

    response = admin_client.get(url, {param: "kiln\x00"})

    assert response.status_code == 302
    assert response["Location"] == f"{url}?e=1"
