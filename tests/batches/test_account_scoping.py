"""Every organisation is sealed off from the others: batch pages, forms and the admin reach only
the user's Isometric accounts' rows; another account's batch is a 404."""

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from batches.models import Facility, FeedstockType, ProductionBatch, SyncStatus
from portal.models import IsometricAccount
from tests.factories import (
    batch_form_data,
    log_in,
    make_account,
    make_batch,
    make_facility,
    make_feedstock_type,
    make_user,
)

pytestmark = pytest.mark.django_db

NO_ACCOUNT = "You are not a member of any Isometric account"


def test_another_account_s_batch_is_nowhere_to_be_seen(
    client: Client, operator: User, account: IsometricAccount
) -> None:
    theirs = make_account("Theirs")
    make_batch(account=account, supplier_reference_id="REF-mine", sync_status=SyncStatus.FAILED)
    other = make_batch(
        make_facility("Their kiln", account=theirs),
        supplier_reference_id="REF-theirs",
        sync_status=SyncStatus.FAILED,
    )

    listed = client.get("/batches/").content.decode()
    assert "REF-mine" in listed
    assert "REF-theirs" not in listed and "Their kiln" not in listed
    assert 'badge-failed">Failed</span> 1<' in listed
    assert "REF-theirs" not in client.get("/batches/", {"q": "theirs"}).content.decode()
    for url in [
        f"/batches/{other.pk}/",
        f"/batches/{other.pk}/edit/",
    ]:
        assert client.get(url).status_code == 404, url
    statuses = client.get("/batches/statuses/", {"ids": other.pk})
    assert statuses.status_code == 200 and f"batch-{other.pk}-" not in statuses.content.decode()
    response = client.post(f"/batches/{other.pk}/edit/", {"display_name": "hijacked"})
    assert response.status_code == 404
    assert client.post(f"/batches/{other.pk}/retry/").status_code == 404
    other.refresh_from_db()
    assert (other.sync_status, other.display_name, other.account) == (
        SyncStatus.FAILED,
        "",
        theirs,
    )


def test_a_superuser_sees_every_account_s_batches(client: Client) -> None:
    log_in(client, make_user("root", is_superuser=True, is_staff=True))
    make_batch(account=make_account("A"), supplier_reference_id="REF-a")
    make_batch(account=make_account("B"), supplier_reference_id="REF-b")
    listed = client.get("/batches/").content.decode()
    assert "REF-a" in listed and "REF-b" in listed


def test_with_one_account_batches_go_into_it_with_its_own_facilities_only(
    client: Client,
    operator: User,
    account: IsometricAccount,
    facility: Facility,
    feedstock_type: FeedstockType,
) -> None:
    theirs = make_account("Theirs")
    their_facility = make_facility("Their kiln", account=theirs)
    their_feedstock = make_feedstock_type("Their straw", account=theirs)

    page = client.get("/batches/new/", follow=True).content.decode()
    assert 'name="account"' not in page
    assert "Kiln A" in page and "Their kiln" not in page and "Their straw" not in page
    refused = client.post(
        "/batches/new/", batch_form_data(their_facility, their_feedstock)
    ).content.decode()
    assert refused.count('class="error" id="id_facility_error"><p>Select a valid choice') == 1
    assert (
        refused.count('class="error" id="id_feedstock_types_error"><p>Select a valid choice') == 1
    )
    client.post("/batches/new/", batch_form_data(facility, feedstock_type))
    assert ProductionBatch.objects.get().account == account


def test_with_several_accounts_the_operator_chooses_among_their_own(
    client: Client, operator: User, account: IsometricAccount
) -> None:
    second = make_account("Second", members=(operator,))
    outsider = make_account("Outsider")
    facility, feedstock = make_facility(account=second), make_feedstock_type(account=second)
    page = client.get("/batches/new/", follow=True).content.decode()
    assert 'name="account"' in page and "Outsider" not in page
    assert f"{facility.name} (Second)" in page

    refused = client.post(
        "/batches/new/", batch_form_data(facility, feedstock, account=outsider.pk)
    )
    assert "Select a valid choice" in refused.content.decode()
    missing = client.post("/batches/new/", batch_form_data(facility, feedstock))
    assert "This field is required" in missing.content.decode()
    mixed = client.post("/batches/new/", batch_form_data(facility, feedstock, account=account.pk))
    assert "This facility is not one of Kilns Ltd" in mixed.content.decode()
    assert "Choose feedstock types of Kilns Ltd only" in mixed.content.decode()
    client.post("/batches/new/", batch_form_data(facility, feedstock, account=second.pk))
    assert ProductionBatch.objects.get().account == second
    assert account.batches.count() == 0


def test_an_operator_in_no_account_cannot_record_and_is_told_why(
    client: Client, account: IsometricAccount, facility: Facility, feedstock_type: FeedstockType
) -> None:
    make_batch(account=account, supplier_reference_id="REF-someone-else")
    log_in(client, make_user("nadia", operator=True))

    page = client.get("/batches/new/")
    assert page.status_code == 403 and NO_ACCOUNT in page.content.decode()
    posted = client.post("/batches/new/", batch_form_data(facility, feedstock_type))
    assert posted.status_code == 403
    assert ProductionBatch.objects.count() == 1
    listed = client.get("/batches/").content.decode()
    assert NO_ACCOUNT in listed and "REF-someone-else" not in listed
    assert "REF-someone-else" not in client.get("/batches/", {"q": "someone"}).content.decode()


@pytest.fixture
def staff_of_a(client: Client, account: IsometricAccount) -> User:
    """A staff member of the account who may manage batches, facilities and feedstock types."""
    user = make_user("stella", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="batches",
            content_type__model__in=["productionbatch", "facility", "feedstocktype"],
        )
    )
    account.members.add(user)
    log_in(client, user)
    return user


def test_the_admin_offers_and_accepts_only_the_staff_member_s_accounts(
    client: Client,
    staff_of_a: User,
    account: IsometricAccount,
    facility: Facility,
    feedstock_type: FeedstockType,
) -> None:
    theirs = make_account("Theirs")
    their_facility = make_facility("Their kiln", account=theirs)
    their_batch = make_batch(account=theirs, supplier_reference_id="REF-theirs")
    add_url = "/admin/batches/productionbatch/add/"

    page = client.get(add_url).content.decode()
    assert "Kilns Ltd" in page and "Theirs" not in page and "Their kiln" not in page
    data = batch_form_data(facility, feedstock_type, account=theirs.pk)
    assert "Select a valid choice" in client.post(add_url, data).content.decode()
    data = batch_form_data(their_facility, feedstock_type, account=account.pk)
    assert "Select a valid choice" in client.post(add_url, data).content.decode()
    assert not theirs.batches.filter(supplier_reference_id="KILN-A-0001").exists()

    client.post(add_url, batch_form_data(facility, feedstock_type, account=account.pk))
    assert account.batches.filter(supplier_reference_id="KILN-A-0001").exists()
    changelist = client.get("/admin/batches/productionbatch/").content.decode()
    assert "KILN-A-0001" in changelist and "REF-theirs" not in changelist
    assert "Their kiln" not in changelist
    change = client.get(f"/admin/batches/productionbatch/{their_batch.pk}/change/")
    assert change.status_code == 302  # the admin's "does not exist", back to its index
    for model in ("facility", "feedstocktype"):
        listed = client.get(f"/admin/batches/{model}/").content.decode()
        assert "Theirs" not in listed and "Their kiln" not in listed


def test_the_admin_shows_a_synced_batch_read_only(
    client: Client, staff_of_a: User, account: IsometricAccount
) -> None:
    batch = make_batch(
        account=account,
        sync_status=SyncStatus.SYNCED,
        remote_id="ptb_0123456789ABCDEFGHJK",
        next_attempt_at=None,
    )

    response = client.get(f"/admin/batches/productionbatch/{batch.pk}/change/")

    assert response.status_code == 200
    assert batch.supplier_reference_id in response.content.decode()
