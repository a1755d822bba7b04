"""What operators see of the sync: live status, attempts, Isometric's refusals, retry, refresh."""

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from batches.models import AttemptOutcome, ProductionBatch, SyncAttempt, SyncStatus
from portal.models import ConnectionStatus, IsometricAccount
from tests.factories import batch_form_data, log_in, make_account, make_batch, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def logged_in(operator: User) -> None:
    """Every test here is an operator of the account's."""


HTMX = {"HX-Request": "true"}


def form_data_of(batch: ProductionBatch, **changes: Any) -> dict[str, Any]:
    feedstock_type = batch.feedstock_types.get()
    return batch_form_data(
        batch.facility, feedstock_type, supplier_reference_id=batch.supplier_reference_id, **changes
    )


def test_the_batch_page_watches_a_batch_in_motion_and_stops_when_settled(
    client: Client, account: IsometricAccount
) -> None:
    batch = make_batch(account=account)
    page = client.get(f"/batches/{batch.pk}/").content.decode()
    assert 'hx-trigger="every 2s"' in page

    ProductionBatch.objects.update(
        sync_status=SyncStatus.SYNCED, remote_id="ptb_" + "1" * 26, next_attempt_at=None
    )
    fragment = client.get(f"/batches/{batch.pk}/", headers=HTMX).content.decode()

    assert fragment.lstrip().startswith('<div id="batch"')
    assert "<html" not in fragment
    assert "hx-trigger" not in fragment
    assert "Synced" in fragment and "ptb_" + "1" * 26 in fragment


def test_a_batch_waiting_long_is_not_watched(client: Client, account: IsometricAccount) -> None:
    later = make_batch(account=account, next_attempt_at=timezone.now() + timedelta(hours=1))
    assert "hx-trigger" not in client.get(f"/batches/{later.pk}/").content.decode()


def test_the_batch_page_lists_the_attempts(client: Client, account: IsometricAccount) -> None:
    batch = make_batch(account=account, sync_status=SyncStatus.PENDING, sync_attempts=1)
    SyncAttempt.objects.create(
        batch=batch,
        started_at=timezone.now(),
        duration_ms=1234,
        outcome=AttemptOutcome.RETRY,
        http_status=503,
        message="POST /production_batches: server error (503); next attempt in 3 s",
    )

    page = client.get(f"/batches/{batch.pk}/").content.decode()

    visible, technical = page.split('<details class="card technical">')
    assert "Will retry" in visible
    assert "503" not in visible and "1234 ms" not in visible
    assert "<summary>Technical details</summary>" in technical
    assert "Will retry" in technical and "503" in technical and "1234 ms" in technical
    assert "server error (503)" in technical


def test_the_batch_page_keeps_raw_ids_in_its_technical_details(
    client: Client, account: IsometricAccount
) -> None:
    batch = make_batch(
        account=account,
        sync_status=SyncStatus.SYNCED,
        remote_id="ptb_ABCDEFGHJKMNPQRS",
        replaced_remote_id="ptb_SRQPNMKJHGFEDCBA",
        uploaded_at=timezone.now(),
    )

    page = client.get(f"/batches/{batch.pk}/").content.decode()

    visible, technical = page.split('<details class="card technical">')
    ids = [batch.remote_id, batch.replaced_remote_id, batch.facility.isometric_id]
    ids += batch.feedstock_type_ids
    for raw in ids:
        assert raw not in visible and raw in technical, raw
    assert "<dt>In Isometric</dt><dd>Yes, uploaded " in visible


def test_a_refused_batch_shows_why_on_its_page_and_at_the_fields_of_its_form(
    client: Client, account: IsometricAccount
) -> None:
    batch = make_batch(
        account=account,
        sync_status=SyncStatus.REJECTED,
        rejection_errors=[["mass_unit", "unit not accepted"], [None, "something else"]],
    )

    page = client.get(f"/batches/{batch.pk}/").content.decode()
    assert "Isometric refused this batch" in page
    assert "<strong>Unit</strong>: Isometric refused this: unit not accepted." in page

    form = client.get(f"/batches/{batch.pk}/edit/").content.decode()
    unit_field = form.split('id="field-mass_unit"')[1].split('<div class="field')[0]
    assert "Isometric refused this: unit not accepted." in unit_field
    assert "Isometric refused this: something else." in form


@pytest.mark.parametrize(
    ("field", "message", "label", "sentence"),
    [
        ("facility", "Facility not found", "Facility", "Isometric does not know this facility."),
        (
            "supplier_reference_id",
            "String should have at most 100 characters",
            "Supplier reference",
            "Isometric takes at most 100 characters here.",
        ),
        ("mass_magnitude", "Input should be greater than 0", "Mass", "Isometric needs a value "),
        ("started_at", "Field required", "Production started", "Isometric needs a value here."),
    ],
)
def test_isometric_s_reasons_read_as_sentences_at_their_fields(
    client: Client, account: IsometricAccount, field: str, message: str, label: str, sentence: str
) -> None:
    batch = make_batch(
        account=account, sync_status=SyncStatus.REJECTED, rejection_errors=[[field, message]]
    )

    page = client.get(f"/batches/{batch.pk}/").content.decode()
    visible, technical = page.split('<details class="card technical">')
    assert f"<strong>{label}</strong>: {sentence}" in visible
    assert message not in visible and message in technical

    form = client.get(f"/batches/{batch.pk}/edit/").content.decode()
    at_field = form.split(f'id="field-{field}"')[1].split('<div class="field')[0]
    assert sentence in at_field
    assert "correct the fields marked below and save it to send it again" in form
    # Listed at the top, but not taking the focus: the operator has submitted nothing yet.
    summary = form.split('id="error-summary"')[1]
    assert f'<a href="#id_{field}">{label}: {sentence}' in summary
    assert "autofocus" not in summary.split(">")[0]


def test_saving_a_refused_batch_makes_it_due_again_from_a_fresh_count(
    client: Client, account: IsometricAccount
) -> None:
    batch = make_batch(
        account=account,
        sync_status=SyncStatus.REJECTED,
        sync_attempts=1,
        rejection_errors=[["mass_unit", "unit not accepted"]],
        next_attempt_at=None,
    )
    data = form_data_of(batch, mass_unit="kg")

    response = client.post(f"/batches/{batch.pk}/edit/", data)

    assert response.status_code == 302
    batch.refresh_from_db()
    assert (batch.sync_status, batch.sync_attempts, batch.rejection_errors) == (
        SyncStatus.PENDING,
        0,
        [],
    )
    assert batch.next_attempt_at is not None


def test_retry_sends_a_failed_batch_again(client: Client, account: IsometricAccount) -> None:
    batch = make_batch(
        account=account, sync_status=SyncStatus.FAILED, sync_attempts=10, next_attempt_at=None
    )
    assert (
        f'action="/batches/{batch.pk}/retry/"'
        in client.get(f"/batches/{batch.pk}/").content.decode()
    )

    response = client.post(f"/batches/{batch.pk}/retry/", follow=True)

    assert "sent to Isometric again" in response.content.decode()
    batch.refresh_from_db()
    assert (batch.sync_status, batch.sync_attempts) == (SyncStatus.PENDING, 0)
    assert batch.next_attempt_at is not None and batch.next_attempt_at <= timezone.now()
    assert client.get(f"/batches/{batch.pk}/retry/").status_code == 405
    again = client.post(f"/batches/{batch.pk}/retry/", follow=True).content.decode()
    assert "not waiting for a retry" in again


def poller(page: str) -> str | None:
    """The ids the list page's poller asks for, or None when it has none."""
    found = re.search(
        r'<div id="batch-statuses" hx-get="/batches/statuses/\?ids=([\d,]+)" '
        r'hx-trigger="every 3s" hx-swap="outerHTML"></div>',
        page,
    )
    return found[1] if found else None


def test_the_list_watches_its_batches_in_motion_with_one_poller(
    client: Client, account: IsometricAccount
) -> None:
    first = make_batch(account=account, supplier_reference_id="REF-moving-1")
    second = make_batch(account=account, sync_status=SyncStatus.SYNCING)
    make_batch(account=account, sync_status=SyncStatus.SYNCED, supplier_reference_id="REF-done")
    later = make_batch(account=account, next_attempt_at=timezone.now() + timedelta(hours=1))

    page = client.get("/batches/").content.decode()

    assert page.count("hx-trigger=") == 2  # the poller, and the search form's
    assert poller(page) == f"{second.pk},{first.pk}"  # in the list's order
    assert f'<span id="batch-{later.pk}-status" class="badge badge-pending">Pending</span>' in page
    fragment = client.get("/batches/", headers=HTMX).content.decode()
    assert poller(fragment) == f"{second.pk},{first.pk}"  # it comes with the table


def test_one_request_returns_every_watched_badge_and_the_poller_for_those_still_moving(
    client: Client, account: IsometricAccount
) -> None:
    moving = make_batch(account=account)
    settled = make_batch(account=account, sync_status=SyncStatus.SYNCING)
    ProductionBatch.objects.filter(pk=settled.pk).update(
        sync_status=SyncStatus.SYNCED, next_attempt_at=None
    )

    response = client.get("/batches/statuses/", {"ids": f"{settled.pk},{moving.pk}"}, headers=HTMX)

    page = response.content.decode()
    assert response.status_code == 200
    assert (
        f'<span id="batch-{settled.pk}-status" hx-swap-oob="true" class="badge badge-synced">'
        "Synced</span>" in page
    )
    assert (
        f'<span id="batch-{moving.pk}-status" hx-swap-oob="true" class="badge badge-pending">'
        "Pending</span>" in page
    )
    assert poller(page) == str(moving.pk)


def test_once_nothing_is_in_motion_the_poller_is_replaced_by_nothing(
    client: Client, account: IsometricAccount
) -> None:
    batch = make_batch(account=account, sync_status=SyncStatus.FAILED)

    page = client.get("/batches/statuses/", {"ids": batch.pk}, headers=HTMX).content.decode()

    assert f'id="batch-{batch.pk}-status"' in page
    assert poller(page) is None and "batch-statuses" not in page


def test_statuses_are_only_of_the_user_s_batches(client: Client, account: IsometricAccount) -> None:
    mine = make_batch(account=account)
    theirs = make_batch(account=make_account("Not mine"))

    page = client.get("/batches/statuses/", {"ids": f"{mine.pk},{theirs.pk}"}).content.decode()

    assert f'id="batch-{mine.pk}-status"' in page
    assert f"batch-{theirs.pk}-" not in page
    assert poller(page) == str(mine.pk)


@pytest.mark.parametrize(
    "ids", ["", "1,x", "-1", "0", "1,,2", "99999999999999999999", ",".join(["1"] * 26)]
)
def test_statuses_refuse_anything_but_a_page_of_ids(client: Client, ids: str) -> None:
    response = client.get("/batches/statuses/", {"ids": ids})

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")


def test_refresh_from_isometric_asks_the_worker_to_pull_the_user_s_accounts(
    client: Client, account: IsometricAccount
) -> None:
    other = make_account("Not mine")
    page = client.get("/batches/").content.decode()
    assert "Refresh from Isometric" in page
    assert "have not been fetched yet" in page

    response = client.post("/batches/refresh/", follow=True)

    assert "Fetching your batches from Isometric" in response.content.decode()
    account.refresh_from_db()
    other.refresh_from_db()
    assert account.pull_due_at is not None and account.pull_due_at <= timezone.now()
    assert other.pull_due_at is None


def test_an_operator_sees_when_sending_is_paused_for_their_account(
    client: Client, account: IsometricAccount
) -> None:
    assert "is paused" not in client.get("/batches/").content.decode()
    IsometricAccount.objects.update(connection_status=ConnectionStatus.REJECTED)

    page = client.get("/batches/").content.decode()

    assert "Sending batches to Isometric for “Kilns Ltd” is paused" in page


def test_a_batch_changed_in_the_admin_is_due_to_be_sent_again(client: Client) -> None:
    log_in(client, make_user("root", is_superuser=True, is_staff=True))
    batch = make_batch(
        account=make_account("A"), sync_status=SyncStatus.REJECTED, next_attempt_at=None
    )
    url = f"/admin/batches/productionbatch/{batch.pk}/change/"

    response = client.post(url, form_data_of(batch, mass_unit="kg", account=batch.account_id))

    assert response.status_code == 302, response.context["adminform"].form.errors
    batch.refresh_from_db()
    assert (batch.sync_status, batch.mass_unit) == (SyncStatus.PENDING, "kg")
    assert batch.next_attempt_at is not None


def test_the_admin_lists_only_the_user_s_accounts_batches(client: Client, operator: User) -> None:
    operator.is_staff = True
    operator.save()
    mine = make_account("Mine", members=(operator,))
    make_batch(account=mine, supplier_reference_id="REF-mine")
    make_batch(account=make_account("Theirs"), supplier_reference_id="REF-theirs")

    page = client.get("/admin/batches/productionbatch/").content.decode()

    assert "REF-mine" in page and "REF-theirs" not in page
