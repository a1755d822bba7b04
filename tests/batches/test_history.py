"""A batch's history: every change, who made it and through what, with its fields' old and new
values; and the batch page's one timeline of changes and attempts to send it."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batches import sync
from batches.history import Via, changes_via, log_batch_changes
from batches.models import (
    AttemptOutcome,
    Facility,
    FeedstockType,
    ProductionBatch,
    SyncAttempt,
    SyncStatus,
)
from batches.selectors import batch_timeline
from isometric.emulator import Emulator
from portal.history import Change
from portal.models import IsometricAccount
from tests.factories import (
    batch_form_data,
    log_in,
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


def page_of(client: Client, batch: ProductionBatch) -> str:
    response = client.get(f"/batches/{batch.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def field(label: str, text: str) -> str:
    """A field of a change as the timeline shows it."""
    return f'<span class="field-label">{label}</span>: {text}'


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

    page = page_of(client, batch)
    # One operation, one change: the fields and the feedstock types' links together.
    assert page.count('<tr class="change">') == 2
    assert "olivia" in page and "via Web form" in page
    assert field("Mass", "12.5 → 13.25") in page
    assert field("Display name", "— → Spring &lt;run&gt;") in page
    assert field("Feedstock types", "removed Wood chips; added Straw") in page
    # The new batch's values, readable: the facility by name, the status by label.
    assert field("Facility", "Kiln A") in page
    assert field("Status", "Pending") in page
    assert field("Supplier reference", "KILN-A-0001") in page


def test_the_admin_logs_its_changes_as_the_staff_member_s(
    client: Client, account: IsometricAccount, facility: Facility, feedstock_type: FeedstockType
) -> None:
    staff = make_user("stella", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="batches", codename__endswith="batch")
    )
    account.members.add(staff)
    log_in(client, staff)
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
    page = page_of(client, gone)
    assert "the portal" in page and "via Pull from Isometric" in page
    assert field("Deleted in Isometric", "— → ") in page


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
    page = page_of(client, batch)
    assert field("Facility", "Kiln A → Kiln B") in page
    assert field("Status", "Pending → Synced") in page
    assert field("Uploaded", "— → 1 May 2025 09:30") in page
    assert "via Sync worker" in page


def test_retrying_a_failed_batch_is_logged_as_the_operator_s(
    client: Client, operator: User, account: IsometricAccount
) -> None:
    batch = make_batch(account=account, sync_status=SyncStatus.FAILED, next_attempt_at=None)

    client.post(f"/batches/{batch.pk}/retry/")

    [entry] = logged(batch)
    assert (entry.actor, entry.additional_data) == (operator, {"via": "form"})
    assert entry.changes == {"sync_status": ["failed", "pending"]}


def test_the_timeline_shows_changes_and_attempts_newest_first(
    client: Client, operator: User, account: IsometricAccount
) -> None:
    with changes_via(Via.IMPORT):
        batch = make_batch(account=account, sync_status=SyncStatus.PENDING)
    now = timezone.now()
    attempt = {"batch": batch, "duration_ms": 1234}
    SyncAttempt.objects.create(
        **attempt,
        started_at=now - timedelta(minutes=3),
        outcome=AttemptOutcome.RETRY,
        http_status=503,
        message="POST /production_batches: server error (503); next attempt in 3 s",
    )
    log_batch_changes([(batch, {"mass_unit": ("tonne", "kg")})], Via.FORM, actor=operator)
    SyncAttempt.objects.create(
        **attempt,
        started_at=now - timedelta(minutes=1),
        outcome=AttemptOutcome.CREATED,
        http_status=200,
        message="Created as ptb_0123456789ABCDEFGHJK",
    )
    *creation, change = entries_of(batch)
    LogEntry.objects.filter(pk__in=[entry.pk for entry in creation]).update(
        timestamp=now - timedelta(minutes=5)
    )
    LogEntry.objects.filter(pk=change.pk).update(timestamp=now - timedelta(minutes=2))

    page = page_of(client, batch)

    assert re.findall(r'<tr class="(change|attempt)">', page) == [
        "attempt",
        "change",
        "attempt",
        "change",
    ]
    shown = [
        "Created in Isometric",
        field("Mass unit", "tonne → kg"),
        "Will retry",
        field("Supplier reference", batch.supplier_reference_id),
    ]
    positions = [page.index(text) for text in shown]
    assert positions == sorted(positions)
    visible, technical = page.split('<details class="card technical">')
    assert "server error" not in visible and "1234 ms" not in visible
    assert '<td class="num">503</td><td class="num">1234 ms</td>' in technical
    assert "server error (503)" in technical and "Created as ptb_0123456789ABCDEFGHJK" in technical


def test_the_timeline_is_the_newest_entries_in_a_few_queries(
    account: IsometricAccount, facility: Facility
) -> None:
    batch = make_batch(facility)
    facilities = [make_facility(f"Kiln {n}", account=account) for n in range(12)]
    users = [make_user(f"user{n}") for n in range(12)]
    for n, (old, new) in enumerate(zip([facility, *facilities], facilities, strict=False)):
        log_batch_changes([(batch, {"facility": (old, new)})], Via.ADMIN, actor=users[n])
    SyncAttempt.objects.bulk_create(
        SyncAttempt(
            batch=batch,
            started_at=timezone.now() + timedelta(seconds=n),
            duration_ms=n,
            outcome=AttemptOutcome.RETRY,
        )
        for n in range(15)
    )

    with CaptureQueriesContext(connection) as queries:
        timeline = batch_timeline(batch, 20)

    assert len(queries) <= 4  # the entries and their actors, the attempts, the facilities
    assert len(timeline) == 20
    assert [entry.at for entry in timeline] == sorted(
        (entry.at for entry in timeline), reverse=True
    )
    assert {entry.kind for entry in timeline} == {"change", "attempt"}
    shown = {f.new for entry in timeline if isinstance(entry, Change) for f in entry.fields}
    assert shown <= {each.name for each in facilities}
