"""Corrections and voids, end to end: the operator's form and buttons, the worker's delete and
create against the emulator over real HTTP, under the faults a push survives."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from batches import sync
from batches.models import (
    AttemptOutcome,
    Facility,
    FeedstockType,
    ProductionBatch,
    SyncStatus,
)
from batches.sync.pull import _Mirror
from isometric.emulator import Emulator
from isometric.errors import NotYourTurn, TransportError
from portal.models import Clients, IsometricAccount
from tests.factories import batch_form_data, make_batch

pytestmark = pytest.mark.django_db

REFERENCE = "KILN-A-0007"
FAULTS = ["lost_response", "reset", "error_500", "error_503", "rate_limited"]


@pytest.fixture
def unsent(
    account: IsometricAccount, known_facility: Facility, known_feedstock_type: FeedstockType
) -> ProductionBatch:
    """A batch of 12.5 t due to be sent, of a facility and feedstock type Isometric knows."""
    return make_batch(
        known_facility,
        [known_feedstock_type],
        account=account,
        supplier_reference_id=REFERENCE,
        mass_magnitude="12.5",
    )


@pytest.fixture
def synced(unsent: ProductionBatch) -> ProductionBatch:
    """A batch the worker has sent: Isometric holds it."""
    assert run_worker() == [AttemptOutcome.CREATED]
    unsent.refresh_from_db()
    assert unsent.sync_status == SyncStatus.SYNCED
    return unsent


def run_worker(rounds: int = 1) -> list[AttemptOutcome | None]:
    """Push what is due, `rounds` times, as the worker does; a retry is made due at once."""
    outcomes = []
    clients = Clients()
    try:
        for _ in range(rounds):
            ProductionBatch.objects.exclude(next_attempt_at=None).update(
                next_attempt_at="2000-01-01T00:00:00Z"
            )
            outcomes += [sync.push(claim, clients) for claim in sync.claim_due(10)]
    finally:
        clients.close()
    return outcomes


def correction(batch: ProductionBatch, **changes: Any) -> dict[str, Any]:
    """The edit form of `batch` as posted with `changes`, confirmed."""
    data = batch_form_data(
        batch.facility,
        batch.feedstock_types.get(),
        supplier_reference_id=batch.supplier_reference_id,
        display_name=batch.display_name,
        started_at=batch.started_at.strftime("%Y-%m-%dT%H:%M:%S"),
        ended_at=batch.ended_at.strftime("%Y-%m-%dT%H:%M:%S"),
        **changes,
    )
    return data | {"confirm_correction": "1"}


def correct(client: Client, batch: ProductionBatch) -> None:
    """The operator corrects the batch's mass to 14 t, and confirms."""
    response = client.post(
        reverse("batches:edit", args=[batch.pk]), correction(batch, mass_magnitude="14")
    )
    assert response.status_code == 302


@contextmanager
def claimed() -> Iterator[tuple[sync.Claim, Clients]]:
    """The one due batch, claimed as a worker does, and a worker's clients; the worker dies
    when the block ends (nothing recorded), and its lease has run out."""
    [claim] = sync.claim_due(10)
    clients = Clients()
    try:
        yield claim, clients
    finally:
        clients.close()
    ProductionBatch.objects.filter(pk=claim.batch.pk).update(next_attempt_at="2000-01-01T00:00:00Z")


@contextmanager
def sending() -> Iterator[sync.Sent]:
    """The one due batch, sent to Isometric by a worker that has yet to record what came of
    it: the block does what happens meanwhile, and records it."""
    [claim] = sync.claim_due(10)
    clients = Clients()
    try:
        yield sync.send(claim, clients)
    finally:
        clients.close()


def in_isometric(emulator: Emulator) -> list[dict[str, Any]]:
    return [dict(each) for each in emulator.production_batches()]


def assert_corrected_once(emulator: Emulator, batch: ProductionBatch, old_id: str) -> None:
    """Isometric holds exactly one batch for it, with the corrected mass, and not the old one."""
    batch.refresh_from_db()
    held = [each for each in in_isometric(emulator) if each["id"] != old_id]
    assert old_id not in {each["id"] for each in in_isometric(emulator)}
    assert len(held) == 1, held
    [remote] = held
    assert remote["supplier_reference_id"] == batch.supplier_reference_id
    assert Decimal(str(remote["mass"]["magnitude"])) == Decimal("14")
    assert (batch.sync_status, batch.remote_id) == (SyncStatus.SYNCED, remote["id"])
    assert batch.replaced_remote_id == ""


def test_a_synced_batch_is_corrected_after_the_operator_sees_old_beside_new(
    operator_client: Client, synced: ProductionBatch, emulator: Emulator
) -> None:
    old_id = synced.remote_id
    url = reverse("batches:edit", args=[synced.pk])
    data = correction(synced, mass_magnitude="14")
    del data["confirm_correction"]

    preview = operator_client.post(url, data)

    assert preview.status_code == 200
    html = preview.content.decode()
    assert "12.5" in html and "14" in html and f"deletes\n    {old_id}" in html
    synced.refresh_from_db()
    assert (synced.mass_magnitude, synced.sync_status) == (Decimal("12.5"), SyncStatus.SYNCED)

    response = operator_client.post(url, data | {"confirm_correction": "1"})

    assert response.status_code == 302
    synced.refresh_from_db()
    assert (synced.sync_status, synced.mass_magnitude) == (SyncStatus.PENDING, Decimal("14"))
    assert "Correcting" in operator_client.get(synced.get_absolute_url()).content.decode()
    assert run_worker() == [AttemptOutcome.CREATED]
    assert_corrected_once(emulator, synced, old_id or "")
    outcomes = [attempt.outcome for attempt in synced.attempts.order_by("id")]
    assert outcomes == [AttemptOutcome.CREATED, AttemptOutcome.DELETED, AttemptOutcome.CREATED]
    page = operator_client.get(synced.get_absolute_url()).content.decode()
    assert f"Deleted {old_id} in Isometric" in page


def test_saving_a_synced_batch_unchanged_sends_nothing(
    operator_client: Client, synced: ProductionBatch, emulator: Emulator
) -> None:
    url = reverse("batches:edit", args=[synced.pk])
    response = operator_client.post(url, correction(synced, mass_magnitude="12.5"))
    assert response.status_code == 302
    synced.refresh_from_db()
    assert synced.sync_status == SyncStatus.SYNCED
    assert run_worker() == []


@pytest.mark.parametrize("fault", FAULTS)
def test_a_correction_is_exactly_once_under_each_fault(
    operator_client: Client, synced: ProductionBatch, emulator: Emulator, fault: str
) -> None:
    """The fault on the DELETE, and then at random on every request (the DELETE, the lookups,
    the POST) for several attempts: whatever reached Isometric, it ends holding one batch."""
    old_id = synced.remote_id or ""
    correct(operator_client, synced)
    emulator.configure(next_faults=[fault], random_seed=7, **{f"{fault}_rate": 0.4})
    run_worker(rounds=8)
    emulator.configure(**{f"{fault}_rate": 0.0})

    run_worker(rounds=2)

    assert_corrected_once(emulator, synced, old_id)


def test_a_worker_killed_between_the_delete_and_the_create_leaves_one(
    operator_client: Client, synced: ProductionBatch, emulator: Emulator
) -> None:
    old_id = synced.remote_id or ""
    correct(operator_client, synced)
    with claimed() as (claim, clients):
        clients.get(claim.batch.account).delete_production_batch(old_id)

    assert run_worker() == [AttemptOutcome.CREATED]

    assert_corrected_once(emulator, synced, old_id)
    outcomes = [attempt.outcome for attempt in synced.attempts.order_by("id")]
    assert outcomes[-3:] == [AttemptOutcome.RETRY, AttemptOutcome.DELETED, AttemptOutcome.CREATED]


class OneTurnNow:
    """The pace of an account whose turns after the first are a minute off (a 429 came)."""

    def __init__(self, account: IsometricAccount) -> None:
        self.turns = 0

    def wait_turn(self) -> None:
        self.turns += 1
        if self.turns > 1:
            raise NotYourTurn(60)

    def slow_down(self, retry_after: float | None) -> None:
        pass


def test_a_correction_whose_create_must_wait_for_its_turn_keeps_the_delete(
    operator_client: Client, synced: ProductionBatch, emulator: Emulator
) -> None:
    old_id = synced.remote_id or ""
    correct(operator_client, synced)
    [claim] = sync.claim_due(10)
    clients = Clients(pace=OneTurnNow)
    try:
        assert sync.push(claim, clients) is None  # deleted, then not sent: postponed
    finally:
        clients.close()

    synced.refresh_from_db()
    assert (synced.sync_status, synced.remote_id, synced.replaced_remote_id) == (
        SyncStatus.PENDING,
        None,
        old_id,
    )
    assert (synced.sync_attempts, synced.failing_since, synced.last_error) == (0, None, "")
    assert synced.next_attempt_at == claim.due_at  # its place in the queue kept
    outcomes = [attempt.outcome for attempt in synced.attempts.order_by("id")]
    assert outcomes == [AttemptOutcome.CREATED, AttemptOutcome.DELETED]
    assert run_worker() == [AttemptOutcome.CREATED]
    assert_corrected_once(emulator, synced, old_id)


def test_a_worker_killed_after_creating_the_corrected_batch_leaves_one(
    operator_client: Client, synced: ProductionBatch, emulator: Emulator
) -> None:
    old_id = synced.remote_id or ""
    correct(operator_client, synced)
    with claimed() as (claim, clients):
        sync.send(claim, clients)  # deleted and created in Isometric, never recorded

    assert run_worker() == [AttemptOutcome.ADOPTED]

    assert_corrected_once(emulator, synced, old_id)


@pytest.mark.parametrize("fault", ["", "lost_response"])
def test_a_reference_isometric_keeps_after_the_delete_is_derived_and_shown(
    operator_client: Client, synced: ProductionBatch, emulator: Emulator, fault: str
) -> None:
    emulator.configure(reuse_deleted_references=False)
    old_id = synced.remote_id or ""
    correct(operator_client, synced)
    if fault:  # the POST of the derived reference is stored, its answer lost
        with claimed() as (claim, clients):
            client = clients.get(claim.batch.account)
            client.delete_production_batch(old_id)
            emulator.configure(next_faults=[fault])
            with pytest.raises(TransportError):
                client.create_production_batch(
                    replace(claim.batch.to_api(), supplier_reference_id=f"{REFERENCE}~2")
                )

    run_worker(rounds=2)

    synced.refresh_from_db()
    assert synced.supplier_reference_id == f"{REFERENCE}~2"
    assert_corrected_once(emulator, synced, old_id)
    page = operator_client.get(synced.get_absolute_url()).content.decode()
    assert f"{REFERENCE}~2" in page


def test_a_refused_delete_keeps_the_correction_and_isometric_unchanged(
    operator_client: Client, synced: ProductionBatch, emulator: Emulator
) -> None:
    old_id = synced.remote_id or ""
    emulator.refuse_deletion(old_id, "Part of removal rmv_123")
    correct(operator_client, synced)

    assert run_worker() == [AttemptOutcome.REJECTED]

    synced.refresh_from_db()
    assert synced.sync_status == SyncStatus.REJECTED
    assert synced.mass_magnitude == Decimal("14")  # the operator's values are kept
    assert synced.remote_id == old_id
    assert "Part of removal rmv_123" in synced.last_error
    [remote] = in_isometric(emulator)
    assert (remote["id"], remote["mass"]["magnitude"]) == (old_id, 12.5)
    page = operator_client.get(synced.get_absolute_url()).content.decode()
    assert "Part of removal rmv_123" in page
    assert run_worker() == []  # stopped: nothing is tried again unasked

    emulator.allow_deletion(old_id)
    correct(operator_client, synced)
    run_worker()
    assert_corrected_once(emulator, synced, old_id)


def test_an_edit_while_a_push_is_in_flight_is_sent_after_it(
    operator_client: Client, unsent: ProductionBatch, emulator: Emulator
) -> None:
    batch = unsent
    with sending() as sent:  # Isometric now has 12.5 t
        correct(operator_client, batch)
        batch.refresh_from_db()
        assert (batch.sync_status, batch.mass_magnitude) == (SyncStatus.SYNCING, Decimal("14"))
        assert sent.record() == AttemptOutcome.CREATED
    batch.refresh_from_db()
    first_id = batch.remote_id or ""
    assert batch.sync_status == SyncStatus.PENDING  # the correction follows

    run_worker()

    assert_corrected_once(emulator, batch, first_id)


def test_voiding_a_synced_batch_deletes_it_in_isometric_and_keeps_it_here(
    operator_client: Client, synced: ProductionBatch, emulator: Emulator
) -> None:
    url = reverse("batches:void", args=[synced.pk])
    assert operator_client.post(url, {"reason": ""}).status_code == 200  # a reason is required

    assert operator_client.post(url, {"reason": "Recorded twice"}).status_code == 302

    assert run_worker() == [AttemptOutcome.VOIDED]
    synced.refresh_from_db()
    assert (synced.sync_status, synced.void_reason) == (SyncStatus.VOIDED, "Recorded twice")
    assert synced.remote_id is None and synced.voided_at is not None
    assert in_isometric(emulator) == []
    listed = operator_client.get(reverse("batches:list")).content.decode()
    assert synced.get_absolute_url() not in listed
    voided = operator_client.get(reverse("batches:list"), {"sync_status": "voided"})
    assert synced.get_absolute_url() in voided.content.decode()
    edit = operator_client.get(reverse("batches:edit", args=[synced.pk]))
    assert edit["Location"] == synced.get_absolute_url()


@pytest.mark.parametrize("fault", FAULTS)
def test_a_void_is_exactly_once_under_each_fault(
    operator_client: Client, synced: ProductionBatch, emulator: Emulator, fault: str
) -> None:
    operator_client.post(reverse("batches:void", args=[synced.pk]), {"reason": "Test run"})
    emulator.configure(next_faults=[fault, fault])

    run_worker(rounds=4)

    synced.refresh_from_db()
    assert synced.sync_status == SyncStatus.VOIDED
    assert in_isometric(emulator) == []


def test_a_batch_never_sent_is_voided_at_once(
    operator_client: Client, unsent: ProductionBatch, emulator: Emulator
) -> None:
    batch = unsent
    operator_client.post(reverse("batches:void", args=[batch.pk]), {"reason": "Typo"})
    batch.refresh_from_db()
    assert batch.sync_status == SyncStatus.VOIDED
    assert run_worker() == []
    assert emulator.stats()["created_by_supplier_reference_id"] == {}


def test_a_refused_void_leaves_the_batch_synced_and_says_why(
    operator_client: Client, synced: ProductionBatch, emulator: Emulator
) -> None:
    emulator.refuse_deletion(synced.remote_id or "", "Part of removal rmv_9")
    operator_client.post(reverse("batches:void", args=[synced.pk]), {"reason": "Wrong kiln"})

    assert run_worker() == [AttemptOutcome.REJECTED]

    synced.refresh_from_db()
    assert (synced.sync_status, synced.void_reason) == (SyncStatus.SYNCED, "")
    assert "Part of removal rmv_9" in synced.last_error
    assert len(in_isometric(emulator)) == 1


def test_a_void_while_a_push_is_in_flight_deletes_what_it_sent(
    operator_client: Client, unsent: ProductionBatch, emulator: Emulator
) -> None:
    batch = unsent
    with sending() as sent:
        operator_client.post(reverse("batches:void", args=[batch.pk]), {"reason": "Test"})
        sent.record()

    assert run_worker() == [AttemptOutcome.VOIDED]

    batch.refresh_from_db()
    assert batch.sync_status == SyncStatus.VOIDED
    assert in_isometric(emulator) == []


def test_an_operator_without_the_permission_cannot_void(
    operator_client: Client, synced: ProductionBatch, operator: User
) -> None:
    operator.groups.clear()
    operator.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_productionbatch", "change_productionbatch"])
    )
    url = reverse("batches:void", args=[synced.pk])
    assert operator_client.post(url, {"reason": "No"}).status_code == 403
    assert url not in operator_client.get(synced.get_absolute_url()).content.decode()
    synced.refresh_from_db()
    assert synced.void_reason == ""


def test_deleted_in_isometric_is_one_status_and_saving_sends_it_again(
    operator_client: Client, synced: ProductionBatch, emulator: Emulator
) -> None:
    emulator.delete_production_batch(synced.remote_id or "")
    ProductionBatch.objects.filter(pk=synced.pk).update(updated_at="2000-01-01T00:00:00Z")
    sync.pull(synced.account)
    synced.refresh_from_db()
    assert synced.sync_status == SyncStatus.DELETED
    page = operator_client.get(synced.get_absolute_url()).content.decode()
    assert "Deleted in Isometric" in page and ">Synced<" not in page

    correct(operator_client, synced)
    run_worker()

    synced.refresh_from_db()
    assert synced.sync_status == SyncStatus.SYNCED
    assert len(in_isometric(emulator)) == 1


def test_back_from_the_preview_keeps_what_the_operator_typed(
    operator_client: Client, synced: ProductionBatch
) -> None:
    data = correction(synced, mass_magnitude="14") | {"back": "1"}
    del data["confirm_correction"]
    response = operator_client.post(reverse("batches:edit", args=[synced.pk]), data)
    assert response.status_code == 200
    assert 'value="14"' in response.content.decode()
    synced.refresh_from_db()
    assert (synced.mass_magnitude, synced.sync_status) == (Decimal("12.5"), SyncStatus.SYNCED)


def test_a_void_asked_for_while_a_correction_is_refused_keeps_it_refused(
    operator_client: Client, synced: ProductionBatch, emulator: Emulator
) -> None:
    old_id = synced.remote_id or ""
    emulator.refuse_deletion(old_id, "Part of removal rmv_1")
    correct(operator_client, synced)
    with sending() as sent:  # the delete is refused
        operator_client.post(reverse("batches:void", args=[synced.pk]), {"reason": "Twice"})
        sent.record()

    synced.refresh_from_db()
    assert (synced.sync_status, synced.remote_id, synced.void_reason) == (
        SyncStatus.REJECTED,
        old_id,
        "",
    )
    assert synced.mass_magnitude == Decimal("14") and "rmv_1" in synced.last_error
    assert run_worker() == []


def test_a_refused_void_of_a_batch_found_by_its_lookup_keeps_its_id(
    operator_client: Client, unsent: ProductionBatch, emulator: Emulator
) -> None:
    batch = unsent
    emulator.configure(next_faults=["lost_response"])
    assert run_worker() == [AttemptOutcome.RETRY]
    [remote] = in_isometric(emulator)
    emulator.refuse_deletion(remote["id"])
    operator_client.post(reverse("batches:void", args=[batch.pk]), {"reason": "Twice"})

    assert run_worker() == [AttemptOutcome.REJECTED]

    batch.refresh_from_db()
    assert (batch.sync_status, batch.remote_id) == (SyncStatus.SYNCED, remote["id"])


def test_a_pull_never_adopts_back_the_batch_a_correction_deleted(
    operator_client: Client, synced: ProductionBatch, emulator: Emulator, account: IsometricAccount
) -> None:
    old_id = synced.remote_id or ""
    with account.client() as client:
        listed_before = client.find_production_batch(REFERENCE)
    assert listed_before is not None
    # Isometric refuses the corrected batch's facility: the correction stops after the delete.
    unknown = Facility.objects.create(account=account, isometric_id="fcl_" + "X" * 20, name="New")
    data = correction(synced, mass_magnitude="14") | {"facility": str(unknown.pk)}
    assert operator_client.post(reverse("batches:edit", args=[synced.pk]), data).status_code == 302
    run_worker()
    synced.refresh_from_db()
    assert (synced.sync_status, synced.replaced_remote_id) == (SyncStatus.REJECTED, old_id)

    # A page the pull read before the delete still lists the old batch.
    _Mirror(account, timezone.now()).upsert([listed_before])

    synced.refresh_from_db()
    assert (synced.remote_id, synced.mass_magnitude) == (None, Decimal("14"))


def test_saving_an_unusual_batch_unchanged_does_not_replace_it(
    operator_client: Client,
    account: IsometricAccount,
    known_facility: Facility,
    known_feedstock_type: FeedstockType,
    emulator: Emulator,
) -> None:
    batch = make_batch(
        known_facility, [known_feedstock_type], account=account, mass_magnitude="900"
    )
    run_worker()
    batch.refresh_from_db()
    data = correction(batch, mass_magnitude="900") | {"confirm_unusual": "on"}

    assert operator_client.post(reverse("batches:edit", args=[batch.pk]), data).status_code == 302

    synced_id = batch.remote_id
    batch.refresh_from_db()
    assert (batch.sync_status, batch.remote_id) == (SyncStatus.SYNCED, synced_id)
    assert run_worker() == []
