from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from batches.models import Facility, FeedstockType, ProductionBatch, SyncStatus
from tests.factories import batch_form_data, log_in, make_batch, make_user

pytestmark = pytest.mark.django_db


def form_data(facility: Facility, feedstock_type: FeedstockType, **changes: Any) -> dict[str, Any]:
    defaults = {
        "supplier_reference_id": "KILN-A-0042",
        "display_name": "Kiln A, week 47",
        "mass_magnitude": "3.25",
        "mass_standard_deviation": "0.1",
    }
    return batch_form_data(facility, feedstock_type, **{**defaults, **changes})


@pytest.mark.parametrize("name", ["batches:list", "batches:create"])
def test_anonymous_is_sent_to_login(client: Client, name: str) -> None:
    url = reverse(name)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize("view", ["detail", "edit"])
def test_anonymous_is_sent_to_login_from_a_batch(client: Client, view: str) -> None:
    url = reverse(f"batches:{view}", args=[make_batch().pk])
    assert client.get(url)["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("view", ["list", "create", "detail", "edit"])
def test_user_who_is_not_an_operator_is_refused(client: Client, view: str) -> None:
    log_in(client, make_user())
    args = [make_batch().pk] if view in ("detail", "edit") else []
    assert client.get(reverse(f"batches:{view}", args=args)).status_code == 403


def test_create_saves_a_pending_batch_and_shows_it(
    operator_client: Client, facility: Facility, feedstock_type: FeedstockType
) -> None:
    response = operator_client.post(
        reverse("batches:create"), form_data(facility, feedstock_type), follow=True
    )
    batch = ProductionBatch.objects.get()
    assert response.redirect_chain == [(batch.get_absolute_url(), 302)]
    assert batch.supplier_reference_id == "KILN-A-0042"
    assert batch.sync_status == SyncStatus.PENDING
    assert batch.next_attempt_at is not None
    assert batch.created_by is not None and batch.created_by.username == "olivia"
    assert batch.feedstock_type_ids == [feedstock_type.isometric_id]
    assert "Batch KILN-A-0042 saved." in response.content.decode()
    assert "Kiln A, week 47" in response.content.decode()


def test_create_with_errors_shows_them_at_their_fields_and_saves_nothing(
    operator_client: Client, facility: Facility, feedstock_type: FeedstockType
) -> None:
    data = form_data(facility, feedstock_type, mass_magnitude="0", feedstock_types=[])
    response = operator_client.post(reverse("batches:create"), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="id_mass_magnitude_error"><p>Mass must be greater than zero.' in html
    assert 'id="id_feedstock_types_error"><p>Choose at least one feedstock type.' in html
    # Listed at the top too, each linking to its field (a checkbox list: its first box).
    summary = html.split('id="error-summary"')[1].split("</div>")[0]
    assert "autofocus" in summary.split(">")[0]
    assert '<a href="#id_mass_magnitude">Mass: Mass must be greater than zero.</a>' in summary
    assert (
        '<a href="#id_feedstock_types_0">Feedstock types: Choose at least one feedstock type.</a>'
        in summary
    )
    assert "KILN-A-0042" in html, "what the operator typed is kept"
    assert not ProductionBatch.objects.exists()


def test_create_with_a_taken_reference_shows_a_field_error(
    operator_client: Client, facility: Facility, feedstock_type: FeedstockType
) -> None:
    make_batch(supplier_reference_id="KILN-A-0042")
    response = operator_client.post(reverse("batches:create"), form_data(facility, feedstock_type))
    assert "Another batch already has this supplier reference" in response.content.decode()
    assert ProductionBatch.objects.count() == 1


def test_edit_changes_an_unsynced_batch_and_makes_it_due_again(
    operator_client: Client, facility: Facility, feedstock_type: FeedstockType
) -> None:
    batch = make_batch(sync_status=SyncStatus.REJECTED, last_error="mass: bad")
    data = form_data(facility, feedstock_type, supplier_reference_id=batch.supplier_reference_id)
    response = operator_client.post(reverse("batches:edit", args=[batch.pk]), data)
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.display_name == "Kiln A, week 47"
    assert batch.sync_status == SyncStatus.PENDING
    assert batch.last_error == ""


def test_detail_shows_every_field_and_the_sync_state(operator_client: Client) -> None:
    batch = make_batch(
        display_name="Kiln B run 7",
        mass_magnitude="100",
        mass_standard_deviation="0.25",
        remote_id="ptb_ABCDEFGHJKMNPQRS",
        sync_status=SyncStatus.SYNCED,
    )
    html = operator_client.get(batch.get_absolute_url()).content.decode()
    for text in [
        "Kiln B run 7",
        batch.supplier_reference_id,
        batch.facility.name,
        batch.facility.isometric_id,
        batch.feedstock_types.get().name,
        "100 tonne ± 0.250",
        "ptb_ABCDEFGHJKMNPQRS",
        'badge-synced">Synced<',
        "Biochar",
    ]:
        assert text in html


@pytest.mark.parametrize("path", ["/batches/999999/", "/batches/999999/edit/"])
def test_unknown_batch_is_404(operator_client: Client, path: str) -> None:
    assert operator_client.get(path).status_code == 404


@pytest.mark.parametrize(
    "path", ["/batches/abc/", "/batches/-1/", "/batches/99999999999999999999999/"]
)
def test_tampered_batch_ids_are_404(operator_client: Client, path: str) -> None:
    assert operator_client.get(path).status_code == 404
