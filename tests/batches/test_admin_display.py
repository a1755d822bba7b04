"""The admin wears the portal's colours and name, and shows masses and times as it does."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import Client

from tests.factories import make_batch

pytestmark = pytest.mark.django_db


def test_the_batch_list_shows_mass_with_its_unit_and_times_as_the_portal(
    admin_client: Client,
) -> None:
    make_batch(
        started_at=datetime(2026, 3, 7, 14, 5, tzinfo=UTC),
        mass_magnitude=Decimal("12.5"),
        mass_unit="tonne",
    )

    html = admin_client.get("/admin/batches/productionbatch/").content.decode()

    assert '<td class="field-mass">12.500 tonne</td>' in html
    assert ">7 Mar 2026 14:05 UTC</td>" in html


def test_a_batch_in_the_admin_shows_its_times_as_the_portal(admin_client: Client) -> None:
    batch = make_batch()
    batch.created_at = datetime(2026, 11, 30, 9, 41, tzinfo=UTC)
    batch.save(update_fields=["created_at"])

    html = admin_client.get(f"/admin/batches/productionbatch/{batch.pk}/change/").content.decode()

    assert '<div class="readonly">30 Nov 2026 09:41 UTC</div>' in html


def test_every_admin_page_wears_the_portals_colours_and_name(admin_client: Client) -> None:
    for url in ["/admin/", "/admin/batches/productionbatch/", "/admin/batches/facility/add/"]:
        html = admin_client.get(url).content.decode()
        assert 'href="/static/css/admin.css"' in html, url
        assert "Batch Portal admin" in html, url
