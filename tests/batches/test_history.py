"""A batch's history: every change, who made it and through what, with its fields' old and new
values."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batches import sync
from batches.history import Via, log_batch_changes
from batches.models import (
    Facility,
    FeedstockType,
    ProductionBatch,
    SyncStatus,
)
from isometric.emulator import Emulator
from portal.models import IsometricAccount
from tests.factories import (
    batch_form_data,
    make_batch,
    make_facility,
    make_feedstock_type,
    make_user,
)

pytestmark = pytest.mark.django_db

CREATE, UPDATE = LogEntry.Action.CREATE, LogEntry.Action.UPDATE


def entries_of(batch: ProductionBatch) -> list[LogEntry]:
    return list(LogEntry.objects.get_for_object(batch).order_by("timestamp", "pk"))


def logged(batch: ProductionBatch) -> list[LogEntry]:
    """The batch's entries but those of its building by the test (through nothing)."""
    return [entry for entry in entries_of(batch) if entry.additional_data]


def test_the_form_logs_a_new_batch_and_each_change_by_its_operator(
    client: Client, operator: User, facility: Facility, feedstock_type: FeedstockType
) -> None:
    straw = make_feedstock_type("Straw", account=facility.account)
    client.post("/batches/new/", batch_form_data(facility, feedstock_type))
    batch = ProductionBatch.objects.get()
    edited = batch_form_data(facility, straw, mass_magnitude="13.25", display_name="Spring <run>")

    assert client.post(f"/batches/{batch.pk}/edit/", edited).status_code == 302

    entries = entries_of(batch)
    assert {(entry.actor, entry.additional_data["via"]) for entry in entries} == {
        (operator, "form")
    }
    assert entries[0].action == CREATE
    assert entries[0].changes["supplier_reference_id"] == [None, "KILN-A-0001"]
    assert entries[0].changes["facility"] == [None, facility.pk]
    changes = {
        name: pair
        for entry in entries
        if entry.action == UPDATE
        for name, pair in entry.changes.items()
    }
    old_mass, new_mass = changes.pop("mass_magnitude")
    assert (Decimal(old_mass), Decimal(new_mass)) == (Decimal("12.5"), Decimal("13.25"))
    assert changes.pop("display_name") == ["", "Spring <run>"]
    assert set(changes) == {"feedstock_types"}  # nothing of the sync machinery


def test_the_admin_logs_its_changes_as_the_staff_member_s(
    client: Client, account: IsometricAccount, facility: Facility, feedstock_type: FeedstockType
) -> None:
    staff = make_user("stella", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="batches", codename__endswith="batch")
    )
    account.members.add(staff)
    client.force_login(staff)
    batch = make_batch(facility, [feedstock_type], supplier_reference_id="KILN-A-0001")
    data = batch_form_data(facility, feedstock_type, account=account.pk, mass_unit="kg")

    response = client.post(f"/admin/batches/productionbatch/{batch.pk}/change/", data)

    assert response.status_code == 302
    [entry] = logged(batch)
    assert (entry.actor, entry.additional_data) == (staff, {"via": "admin"})
    assert entry.changes["mass_unit"] == ["tonne", "kg"]


def test_the_pull_logs_new_changed_and_deleted_batches_in_one_insert_a_page(
    client: Client, operator: User, account: IsometricAccount, emulator: Emulator
) -> None:
    remote = emulator.add_production_batches(60)
    with CaptureQueriesContext(connection) as queries:
        sync.pull(account)

    inserts = [q for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "auditlog')]
    assert len(inserts) == 2  # two pages
    assert LogEntry.objects.get_for_model(ProductionBatch).filter(action=CREATE).count() == 60
    kept, renamed, gone = (ProductionBatch.objects.get(remote_id=r["id"]) for r in remote[:3])
    [created] = entries_of(renamed)
    assert (created.actor, created.additional_data) == (None, {"via": "pull"})
    assert created.changes["remote_id"] == [None, remote[1]["id"]]
    assert created.changes["sync_status"] == [None, "synced"]
    names = sorted(renamed.feedstock_types.values_list("name", flat=True))
    assert created.changes["feedstock_types"] == [[], names]

    ProductionBatch.objects.filter(pk=renamed.pk).update(display_name="Renamed here")
    ProductionBatch.feedstock_types.through.objects.filter(productionbatch=renamed).delete()
    ProductionBatch.objects.update(updated_at=datetime(2026, 1, 1, tzinfo=UTC))
    emulator.delete_production_batch(gone.remote_id or "")
    sync.pull(account)

    assert len(entries_of(kept)) == 1  # unchanged: only its creation
    [changed] = entries_of(renamed)[1:]
    assert (changed.action, changed.additional_data) == (UPDATE, {"via": "pull"})
    assert changed.changes == {
        "display_name": ["Renamed here", remote[1]["display_name"] or ""],
        "feedstock_types": [[], names],
    }
    [deleted] = entries_of(gone)[1:]
    assert list(deleted.changes) == ["deleted_in_isometric_at"]
    assert deleted.changes["deleted_in_isometric_at"][0] is None


def test_changes_written_in_bulk_are_logged_readably_by_pk_or_batch(
    client: Client, operator: User, account: IsometricAccount, facility: Facility
) -> None:
    batch, untouched = make_batch(facility), make_batch(facility)
    other = make_facility("Kiln B", account=account)
    uploaded = datetime(2025, 5, 1, 9, 30, tzinfo=UTC)

    log_batch_changes(
        [
            (
                batch.pk,
                {
                    "facility_id": (facility.pk, other.pk),
                    "sync_status": (SyncStatus.PENDING, SyncStatus.SYNCED),
                    "uploaded_at": (None, uploaded),
                    "mass_magnitude": (Decimal("12.500000"), Decimal("12.5")),
                    "sync_attempts": (0, 1),
                    "next_attempt_at": (timezone.now(), None),
                },
            ),
            (untouched, {"sync_attempts": (0, 1), "claim_token": ("abc", "")}),
        ],
        Via.WORKER,
    )

    [entry] = logged(batch)
    assert logged(untouched) == []
    assert (entry.object_id, entry.object_repr, entry.actor) == (batch.pk, str(batch), None)
    assert entry.additional_data == {"via": "worker"}
    assert entry.changes == {
        "facility": [facility.pk, other.pk],
        "sync_status": ["pending", "synced"],
        "uploaded_at": [None, "2025-05-01 09:30:00"],
    }


def test_retrying_a_failed_batch_is_logged_as_the_operator_s(
    client: Client, operator: User, account: IsometricAccount
) -> None:
    batch = make_batch(account=account, sync_status=SyncStatus.FAILED, next_attempt_at=None)

    client.post(f"/batches/{batch.pk}/retry/")

    [entry] = logged(batch)
    assert (entry.actor, entry.additional_data) == (operator, {"via": "form"})
    assert entry.changes == {"sync_status": ["failed", "pending"]}
