"""Every batch page is scoped to the user's Isometric accounts: another account's batch is a 404."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from batches.models import Facility, FeedstockType, ProductionBatch, SyncStatus
from tests.factories import batch_form_data, make_account, make_batch, make_user

pytestmark = pytest.mark.django_db

NO_ACCOUNT_NOTICE = "This portal is not connected to Isometric for you yet."


def test_another_account_s_batch_is_nowhere_to_be_seen(client: Client, operator: User) -> None:
    mine = make_account("Mine", members=(operator,))
    theirs = make_account("Theirs")
    make_batch(account=mine, supplier_reference_id="REF-mine", sync_status=SyncStatus.FAILED)
    other = make_batch(
        account=theirs, supplier_reference_id="REF-theirs", sync_status=SyncStatus.FAILED
    )
    make_batch(supplier_reference_id="REF-unassigned")

    listed = client.get("/batches/").content.decode()
    assert "REF-mine" in listed and "REF-unassigned" in listed
    assert "REF-theirs" not in listed
    assert 'badge-failed">Failed</span> 1<' in listed
    assert "REF-theirs" not in client.get("/batches/", {"q": "theirs"}).content.decode()
    for url in [
        f"/batches/{other.pk}/",
        f"/batches/{other.pk}/edit/",
        f"/batches/{other.pk}/status/",
    ]:
        assert client.get(url).status_code == 404, url
    response = client.post(f"/batches/{other.pk}/edit/", {"display_name": "hijacked"})
    assert response.status_code == 404
    assert client.post(f"/batches/{other.pk}/retry/").status_code == 404
    assert ProductionBatch.objects.get(pk=other.pk).sync_status == SyncStatus.FAILED
    assert ProductionBatch.objects.get(pk=other.pk).display_name == ""


def test_a_superuser_sees_every_account_s_batches(client: Client) -> None:
    client.force_login(make_user("root", is_superuser=True, is_staff=True))
    make_batch(account=make_account("A"), supplier_reference_id="REF-a")
    make_batch(account=make_account("B"), supplier_reference_id="REF-b")
    listed = client.get("/batches/").content.decode()
    assert "REF-a" in listed and "REF-b" in listed


def test_with_one_account_batches_go_into_it_unasked(
    client: Client, operator: User, facility: Facility, feedstock_type: FeedstockType
) -> None:
    account = make_account("Mine", members=(operator,))
    page = client.get("/batches/new/").content.decode()
    assert 'name="account"' not in page
    assert NO_ACCOUNT_NOTICE not in page
    client.post("/batches/new/", batch_form_data(facility, feedstock_type))
    assert ProductionBatch.objects.get().account == account


def test_with_several_accounts_the_operator_chooses_among_their_own(
    client: Client, operator: User, facility: Facility, feedstock_type: FeedstockType
) -> None:
    first = make_account("First", members=(operator,))
    second = make_account("Second", members=(operator,))
    outsider = make_account("Outsider")
    page = client.get("/batches/new/").content.decode()
    assert 'name="account"' in page and "Outsider" not in page

    refused = client.post(
        "/batches/new/", batch_form_data(facility, feedstock_type, account=outsider.pk)
    )
    assert "Select a valid choice" in refused.content.decode()
    missing = client.post("/batches/new/", batch_form_data(facility, feedstock_type))
    assert "This field is required" in missing.content.decode()
    client.post("/batches/new/", batch_form_data(facility, feedstock_type, account=second.pk))
    assert ProductionBatch.objects.get().account == second
    assert first.batches.count() == 0


def test_without_an_account_the_batch_is_kept_and_the_operator_told(
    client: Client, operator: User, facility: Facility, feedstock_type: FeedstockType
) -> None:
    page = client.get("/batches/new/").content.decode()
    assert NO_ACCOUNT_NOTICE in page
    assert NO_ACCOUNT_NOTICE in client.get("/").content.decode()
    response = client.post("/batches/new/", batch_form_data(facility, feedstock_type))
    assert response.status_code == 302
    assert ProductionBatch.objects.get().account is None


def test_the_first_account_takes_the_batches_recorded_before_it() -> None:
    early = make_batch()
    first = make_account("First")
    early.refresh_from_db()
    assert early.account == first

    late = make_batch()
    make_account("Second")
    late.refresh_from_db()
    assert late.account is None
