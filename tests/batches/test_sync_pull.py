"""Pull: the account's batches in Isometric mirrored here, from the emulator over real HTTP."""

import importlib
import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from auditlog.models import LogEntry
from cryptography.fernet import Fernet
from django.utils import timezone
from pytest_django.fixtures import Settings

from batches import sync
from batches.models import Facility, FeedstockType, ProductionBatch, SyncStatus
from isometric.client import Client
from isometric.emulator import Emulator
from portal.models import IsometricAccount, RequestBudget
from tests.factories import make_account, make_batch
from tests.processes import run_manage

pytestmark = pytest.mark.django_db


def test_a_first_pull_creates_every_remote_batch_with_its_fields(
    account: IsometricAccount, emulator: Emulator
) -> None:
    remote = emulator.add_production_batches(120)

    result = sync.pull(account)

    assert (result.new, result.updated, result.unchanged, result.deleted) == (120, 0, 0, 0)
    assert ProductionBatch.objects.filter(account=account).count() == 120
    sample = remote[57]
    local = ProductionBatch.objects.get(remote_id=sample["id"])
    assert local.sync_status == SyncStatus.SYNCED
    assert local.supplier_reference_id == (sample["supplier_reference_id"] or "")
    assert local.display_name == sample["display_name"]
    assert local.facility.isometric_id == sample["facility_id"]
    assert local.facility.account == account
    assert local.mass_magnitude == Decimal(str(sample["mass"]["magnitude"])).quantize(
        Decimal("0.000001")
    )
    assert set(local.feedstock_type_ids) == set(sample["feedstock_type_ids"])
    # Facilities Isometric cannot list are added under their id; feedstock types by name.
    assert Facility.objects.filter(isometric_id=sample["facility_id"]).exists()
    assert set(FeedstockType.objects.values_list("isometric_id", flat=True)) >= set(
        emulator.feedstock_type_ids
    )
    account.refresh_from_db()
    assert account.last_pulled_at is not None
    assert account.last_pull_summary == "120 new, 0 updated, 0 unchanged, 0 deleted in Isometric"


def test_a_second_pull_finds_everything_unchanged(
    account: IsometricAccount, emulator: Emulator
) -> None:
    emulator.add_production_batches(30)
    sync.pull(account)

    result = sync.pull(account)

    assert (result.new, result.updated, result.unchanged) == (0, 0, 30)


def test_a_pull_updates_a_batch_whose_copy_here_differs(
    account: IsometricAccount, emulator: Emulator
) -> None:
    [remote] = emulator.add_production_batches(1)
    sync.pull(account)
    ProductionBatch.objects.update(display_name="Renamed here", mass_magnitude=Decimal("1"))

    result = sync.pull(account)

    assert (result.new, result.updated) == (0, 1)
    local = ProductionBatch.objects.get()
    assert local.display_name == remote["display_name"]
    assert local.mass_magnitude != Decimal("1")


def test_a_pull_adopts_a_failed_batch_with_the_same_reference(
    account: IsometricAccount,
    emulator: Emulator,
    isometric_client: Client,
    known_facility: Facility,
    known_feedstock_type: FeedstockType,
) -> None:
    """A push whose answer was lost and then gave up: Isometric holds it after all."""
    batch = make_batch(
        known_facility, [known_feedstock_type], account=account, sync_status=SyncStatus.FAILED
    )
    created = isometric_client.create_production_batch(batch.to_api())

    result = sync.pull(account)

    assert (result.new, result.updated) == (0, 1)
    batch.refresh_from_db()
    assert (batch.sync_status, batch.remote_id) == (SyncStatus.SYNCED, created.id)
    assert ProductionBatch.objects.count() == 1


@pytest.mark.parametrize("status", [SyncStatus.PENDING, SyncStatus.SYNCING])
def test_a_pull_leaves_a_batch_being_sent_to_the_worker(
    account: IsometricAccount,
    emulator: Emulator,
    isometric_client: Client,
    known_facility: Facility,
    known_feedstock_type: FeedstockType,
    status: SyncStatus,
) -> None:
    """The operator may have changed it since a push whose answer was lost: the worker looks
    it up and corrects it if need be; the pull must not write Isometric's values over it."""
    batch = make_batch(known_facility, [known_feedstock_type], account=account, sync_status=status)
    isometric_client.create_production_batch(batch.to_api())
    ProductionBatch.objects.filter(pk=batch.pk).update(display_name="Changed since")

    result = sync.pull(account)

    assert (result.new, result.updated, result.skipped) == (0, 0, [])
    batch.refresh_from_db()
    assert (batch.sync_status, batch.remote_id, batch.display_name) == (
        status,
        None,
        "Changed since",
    )
    assert ProductionBatch.objects.count() == 1


def test_a_pull_leaves_a_correction_under_way_to_the_worker(
    account: IsometricAccount,
    emulator: Emulator,
    isometric_client: Client,
    known_facility: Facility,
    known_feedstock_type: FeedstockType,
) -> None:
    batch = make_batch(known_facility, [known_feedstock_type], account=account)
    created = isometric_client.create_production_batch(batch.to_api())
    ProductionBatch.objects.filter(pk=batch.pk).update(remote_id=created.id, display_name="New")

    result = sync.pull(account)

    assert (result.new, result.updated, result.skipped) == (0, 0, [])
    batch.refresh_from_db()
    assert (batch.sync_status, batch.display_name) == (SyncStatus.PENDING, "New")


def test_a_batch_deleted_in_isometric_is_marked_not_dropped(
    account: IsometricAccount, emulator: Emulator
) -> None:
    remote = emulator.add_production_batches(3)
    sync.pull(account)
    ProductionBatch.objects.update(updated_at="2026-01-01T00:00:00Z")
    emulator.delete_production_batch(remote[1]["id"])

    result = sync.pull(account)

    assert (result.deleted, result.unchanged) == (1, 2)
    gone = ProductionBatch.objects.get(remote_id=remote[1]["id"])
    assert gone.deleted_in_isometric_at is not None
    assert gone.sync_status == SyncStatus.DELETED
    assert ProductionBatch.objects.filter(sync_status=SyncStatus.SYNCED).count() == 2


def test_a_batch_saved_while_the_pull_marks_deletions_is_left_alone(
    account: IsometricAccount, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = emulator.add_production_batches(2)
    sync.pull(account)
    ProductionBatch.objects.update(updated_at="2026-01-01T00:00:00Z")
    for each in remote:
        emulator.delete_production_batch(each["id"])
    edited = ProductionBatch.objects.get(remote_id=remote[0]["id"])
    pull = importlib.import_module("batches.sync.pull")  # the package's `pull` is the function
    plain_batched = pull.batched

    def operator_saves_first(pks: list[int], size: int) -> Any:
        ProductionBatch.objects.filter(pk=edited.pk).update(
            sync_status=SyncStatus.PENDING, next_attempt_at=timezone.now()
        )
        return plain_batched(pks, size)

    monkeypatch.setattr(pull, "batched", operator_saves_first)

    result = sync.pull(account)

    assert result.deleted == 1
    edited.refresh_from_db()
    assert (edited.sync_status, edited.deleted_in_isometric_at) == (SyncStatus.PENDING, None)
    assert not LogEntry.objects.get_for_object(edited).filter(
        additional_data__via="pull", changes__has_key="deleted_in_isometric_at"
    )


def test_a_failed_pull_marks_nothing_deleted_and_says_so(
    account: IsometricAccount, emulator: Emulator
) -> None:
    remote = emulator.add_production_batches(3)
    sync.pull(account)
    ProductionBatch.objects.update(updated_at="2026-01-01T00:00:00Z")
    emulator.delete_production_batch(remote[0]["id"])
    emulator.configure(error_500_rate=1.0)

    with pytest.raises(sync.PullFailed):
        sync.pull(account)

    assert ProductionBatch.objects.filter(sync_status=SyncStatus.SYNCED).count() == 3
    account.refresh_from_db()
    assert account.last_pull_summary.startswith("The last refresh failed")


def test_a_pull_with_credentials_no_key_opens_says_so_on_the_account(
    account: IsometricAccount, settings: Settings
) -> None:
    settings.ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(sync.PullFailed):
        sync.pull(account)

    account.refresh_from_db()
    assert account.last_pull_summary == (
        "The last refresh failed: the stored credentials cannot be decrypted with the current "
        "ENCRYPTION_KEYS: an admin needs to enter the client secret and access token again"
    )


def test_pulls_fall_due_on_schedule_or_on_request_and_are_claimed_once(
    account: IsometricAccount,
) -> None:
    assert sync.claim_due_pull() == account
    assert sync.claim_due_pull() is None

    sync.request_pull(IsometricAccount.objects.filter(pk=account.pk))

    assert sync.claim_due_pull() == account


def test_an_account_whose_pull_fails_does_not_hold_up_the_others(emulator: Emulator) -> None:
    unreachable = make_account("A unreachable")  # sorted first: pulled first
    kilns = make_account("B Kilns", emulator=emulator)
    emulator.add_production_batches(5)

    while sync.pull_next_due():
        pass

    unreachable.refresh_from_db()
    assert unreachable.last_pull_summary.startswith("The last refresh failed")
    assert ProductionBatch.objects.filter(account=kilns).count() == 5


def test_a_pull_whose_turn_is_far_off_is_due_at_its_turn_and_not_a_failure(
    account: IsometricAccount,
    emulator: Emulator,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings.ISOMETRIC_MAX_TURN_WAIT = 5
    emulator.add_production_batches(3)
    turn = timezone.now() + timedelta(seconds=60)  # a 429's Retry-After, say
    RequestBudget.objects.create(account=account, interval=0.1, next_at=turn)

    assert sync.pull_next_due()

    account.refresh_from_db()
    assert (account.last_pulled_at, account.last_pull_summary) == (None, "")
    assert account.pull_due_at is not None
    assert abs((account.pull_due_at - turn).total_seconds()) < 1
    assert sync.claim_due_pull() is None  # not before its turn
    assert not ProductionBatch.objects.exists()
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_the_pull_command_reports_counts_and_fails_clearly(
    account: IsometricAccount, emulator: Emulator, transactional_db: None
) -> None:
    emulator.add_production_batches(5)

    code, output = run_manage("pull_batches", "--account", account.name)
    assert code == 0, output
    assert "Kilns Ltd: 5 new, 0 updated, 0 unchanged, 0 deleted in Isometric" in output

    code, output = run_manage("pull_batches", "--account", "Nobody")
    assert code != 0
    assert "There is no Isometric account named 'Nobody'" in output

    emulator.configure(error_503_rate=1.0)
    code, output = run_manage("pull_batches")
    assert code != 0
    assert "Kilns Ltd: the pull failed" in output
