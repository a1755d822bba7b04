"""Nothing Isometric answers sticks a batch or stops a pull: every mode of the hostile server
against the push (and the worker), the pull, and the "In Isometric" page."""

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client as DjangoClient
from django.utils import timezone
from pytest_django.fixtures import Settings

from batches import sync
from batches.models import (
    AttemptOutcome,
    Facility,
    FeedstockType,
    ProductionBatch,
    SyncAttempt,
    SyncStatus,
)
from batches.worker import Worker
from isometric.emulator import Emulator
from isometric.http_errors import MAX_RETRY_AFTER
from portal.models import Clients, ConnectionStatus, IsometricAccount
from tests.factories import log_in, make_account, make_batch, make_user
from tests.hostile import (
    BAD_NODE_MODES,
    FACILITY_ID,
    FEEDSTOCK_TYPE_IDS,
    MODES,
    RETRY_AFTER,
    HostileIsometric,
)
from tests.hostile import batch as remote_batch
from tests.processes import run_manage

pytestmark = pytest.mark.django_db

# Credentials of the hostile account, distinctive enough that any 8 characters of them found in
# an output can only have come from them.
SECRET = "Zq8sEcReTvW3kP0xLm7NbYc4"
TOKEN = "tKnHq2Wr9Vz5.Jd1Fg6Ls3MpXe7.Uo4Ia0Qw8Ty2"
SLICES = {s[i : i + 8] for s in (SECRET, TOKEN) for i in range(len(s) - 7)}
DEADLINE = 1.0
SLACK = 2.0
URL = "/batches/isometric/"
REFERENCE = "KILN-1"

# What one push comes to in each mode; every other mode is a retry.
PUSH_OUTCOME = dict.fromkeys(MODES, AttemptOutcome.RETRY) | {
    "normal": AttemptOutcome.CREATED,
    "ignore_filter": AttemptOutcome.CREATED,
    "flaky_pages": AttemptOutcome.CREATED,
    "unauthorized_once": AttemptOutcome.PAUSED,
    "echo_secret": AttemptOutcome.REJECTED,
}
# Modes in which a whole answer (not one node of it) is unusable.
PAGE_FAILURES = sorted(MODES - BAD_NODE_MODES - {"normal", "ignore_filter", "flaky_pages"})
WORKER_MODES = [
    "deep_json",
    "huge",
    "taken_id",
    "retry_after_date",
    "echo_secret",
    "unauthorized_once",
]
BROKEN_BODIES = ["html", "truncated_json", "empty_body", "deep_json"]
UNREADABLE_NODE_MODES = sorted(BAD_NODE_MODES - {"taken_id"})


@pytest.fixture(autouse=True)
def short_deadlines(settings: Settings, hostile: HostileIsometric) -> None:
    """Requests end within DEADLINE; the drip sends a byte well within each read timeout, so
    only the deadline ends it."""
    settings.ISOMETRIC_DEADLINE = DEADLINE
    settings.ISOMETRIC_TIMEOUT = (0.5, 0.5)
    settings.ISOMETRIC_MAX_RESPONSE_BYTES = 256 * 1024
    hostile.drip_interval = 0.1


@pytest.fixture
def hostile_account(hostile: HostileIsometric) -> IsometricAccount:
    account = make_account(
        "A hostile", base_url=hostile.base_url, client_secret=SECRET, access_token=TOKEN
    )
    # Pulls happen only when a test asks for one (a worker's puller finds nothing due).
    IsometricAccount.objects.filter(pk=account.pk).update(
        pull_due_at=timezone.now() + timedelta(days=1)
    )
    return account


def hostile_batch(
    account: IsometricAccount, reference: str = REFERENCE, **fields: Any
) -> ProductionBatch:
    """A batch of the hostile account, with the facility and feedstock type Isometric knows."""
    facility, _ = Facility.objects.get_or_create(
        account=account, isometric_id=FACILITY_ID, defaults={"name": "Hostile kiln"}
    )
    feedstock, _ = FeedstockType.objects.get_or_create(
        account=account, isometric_id=FEEDSTOCK_TYPE_IDS[0], defaults={"name": "Rice husk"}
    )
    return make_batch(
        facility, [feedstock], account=account, supplier_reference_id=reference, **fields
    )


def push_due() -> list[AttemptOutcome | None]:
    """Claim the due batches and push each, as a worker does."""
    clients = Clients()
    try:
        return [sync.push(claim, clients) for claim in sync.claim_due(10)]
    finally:
        clients.close()


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        leaked = [piece for piece in SLICES if piece in text]
        assert not leaked, f"credentials in {text[:200]!r}"


def assert_not_stuck(batch: ProductionBatch, settings: Settings) -> SyncAttempt:
    """The batch's last attempt has a reason and the batch a next step; that attempt."""
    batch.refresh_from_db()
    attempt = batch.attempts.order_by("-id").first()
    assert attempt is not None and attempt.message.strip()
    assert batch.claim_token == ""
    now = timezone.now()
    if batch.sync_status == SyncStatus.PENDING and attempt.outcome == AttemptOutcome.PAUSED:
        batch.account.refresh_from_db()
        assert batch.account.connection_status == ConnectionStatus.REJECTED
    elif batch.sync_status == SyncStatus.PENDING:
        latest = now + timedelta(seconds=MAX_RETRY_AFTER + settings.SYNC_BACKOFF_CAP + 5)
        assert batch.next_attempt_at is not None
        assert now < batch.next_attempt_at <= latest
        assert batch.last_error
    elif batch.sync_status == SyncStatus.SYNCED:
        assert batch.remote_id and batch.next_attempt_at is None
    else:
        assert batch.sync_status == SyncStatus.REJECTED, batch.sync_status
        assert batch.rejection_errors and batch.last_error
    return attempt


def texts_of(batch: ProductionBatch, caplog: pytest.LogCaptureFixture) -> list[str]:
    """Everything the portal wrote about the batch's pushes: attempts, errors, log records."""
    batch.refresh_from_db()
    return [
        *batch.attempts.values_list("message", flat=True),
        batch.last_error,
        json.dumps(batch.rejection_errors),
        caplog.text,
        *(record.getMessage() for record in caplog.records),
    ]


def run_in_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    ends = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < ends, "timed out waiting"
        time.sleep(0.01)


# The push


@pytest.mark.parametrize("mode", sorted(MODES))
def test_one_push_in_any_mode_leaves_the_batch_a_next_step(
    mode: str,
    hostile: HostileIsometric,
    hostile_account: IsometricAccount,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    other = hostile_batch(
        hostile_account, "OTHER-1", sync_status=SyncStatus.SYNCED, remote_id=hostile.taken_id
    )
    batch = hostile_batch(hostile_account)
    hostile.mode = mode

    started = time.monotonic()
    assert push_due() == [PUSH_OUTCOME[mode]]

    assert time.monotonic() - started < DEADLINE + SLACK
    assert_not_stuck(batch, settings)
    assert_no_secret(*texts_of(batch, caplog))
    assert not hostile.elsewhere_received
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    other_now = ProductionBatch.objects.get(pk=other.pk)
    assert (other_now.remote_id, other_now.sync_status, other_now.updated_at) == (
        hostile.taken_id,
        SyncStatus.SYNCED,
        other.updated_at,
    )


def test_a_remote_id_another_batch_holds_is_an_attempt_saying_so(
    hostile: HostileIsometric, hostile_account: IsometricAccount, settings: Settings
) -> None:
    hostile_batch(
        hostile_account, "OTHER-1", sync_status=SyncStatus.SYNCED, remote_id=hostile.taken_id
    )
    batch = hostile_batch(hostile_account)
    hostile.mode = "taken_id"

    push_due()

    attempt = assert_not_stuck(batch, settings)
    assert hostile.taken_id in attempt.message and "OTHER-1" in attempt.message
    assert (batch.sync_status, batch.remote_id, batch.possibly_sent) == (
        SyncStatus.PENDING,
        None,
        True,
    )


@pytest.mark.parametrize("mode", sorted(RETRY_AFTER))
def test_retry_after_is_honoured_up_to_an_hour(
    mode: str, hostile: HostileIsometric, hostile_account: IsometricAccount, settings: Settings
) -> None:
    batch = hostile_batch(hostile_account)
    hostile.mode = mode

    assert push_due() == [AttemptOutcome.RETRY]

    assert_not_stuck(batch, settings)
    assert batch.next_attempt_at is not None
    wait = (batch.next_attempt_at - timezone.now()).total_seconds()
    if mode == "retry_after_negative":
        assert 0 < wait <= settings.SYNC_BACKOFF_BASE
    else:
        assert MAX_RETRY_AFTER - 5 < wait <= MAX_RETRY_AFTER


@pytest.mark.parametrize("mode", ["drip", "drip_headers"])
def test_a_dripping_answer_ends_the_attempt_at_the_deadline(
    mode: str, hostile: HostileIsometric, hostile_account: IsometricAccount, settings: Settings
) -> None:
    batch = hostile_batch(hostile_account)
    hostile.mode = mode

    assert push_due() == [AttemptOutcome.RETRY]

    attempt = assert_not_stuck(batch, settings)
    assert DEADLINE * 1000 - 100 <= attempt.duration_ms <= (DEADLINE + 1) * 1000
    assert batch.possibly_sent  # the POST was sent: the next attempt looks the batch up


def test_a_redirect_takes_no_credentials_elsewhere(
    hostile: HostileIsometric, hostile_account: IsometricAccount, settings: Settings
) -> None:
    batch = hostile_batch(hostile_account)
    hostile.mode = "redirect"

    assert push_due() == [AttemptOutcome.RETRY]

    assert_not_stuck(batch, settings)
    assert hostile.received and not hostile.elsewhere_received


def test_refused_credentials_pause_the_account_until_an_admin_enters_them_again(
    hostile: HostileIsometric, hostile_account: IsometricAccount, settings: Settings
) -> None:
    batch = hostile_batch(hostile_account)
    hostile.mode = "unauthorized_once"

    assert push_due() == [AttemptOutcome.PAUSED]
    assert_not_stuck(batch, settings)
    assert push_due() == []  # paused

    hostile_account.refresh_from_db()
    hostile_account.set_credentials(client_secret=SECRET, access_token=TOKEN)
    hostile_account.save()
    assert push_due() == [AttemptOutcome.CREATED]
    batch.refresh_from_db()
    assert batch.sync_status == SyncStatus.SYNCED


@pytest.mark.parametrize("already_there", [True, False], ids=["sent", "not-sent"])
@pytest.mark.parametrize("mode", ["ignore_filter", "flaky_pages"])
def test_an_ambiguous_push_is_looked_up_and_ends_synced_exactly_once(
    mode: str,
    already_there: bool,
    hostile: HostileIsometric,
    hostile_account: IsometricAccount,
    settings: Settings,
) -> None:
    """The last push may have reached Isometric: the lookup scans pages the server did not
    filter, some of them failing, and the batch is then adopted, created, or tried again."""
    hostile.batches.extend(remote_batch(number) for number in range(4, 121))
    batch = hostile_batch(hostile_account, possibly_sent=True)
    if already_there:  # as the push whose answer was lost stored it
        hostile.batches.append(remote_batch(121, **batch.to_api().to_json()))
    hostile.retry_after = "0"
    hostile.mode = mode

    for _ in range(5):
        push_due()
        assert_not_stuck(batch, settings)
        if batch.sync_status == SyncStatus.SYNCED:
            break
        ProductionBatch.objects.filter(pk=batch.pk).update(next_attempt_at=timezone.now())

    [copy] = [each for each in hostile.batches if each["supplier_reference_id"] == REFERENCE]
    assert (batch.sync_status, batch.remote_id) == (SyncStatus.SYNCED, copy["id"])
    posts = [each for each in hostile.received if each.method == "POST"]
    assert len(posts) == (0 if already_there else 1)


# The worker


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", WORKER_MODES)
def test_a_worker_records_every_mode_and_returns(
    mode: str,
    hostile: HostileIsometric,
    hostile_account: IsometricAccount,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    hostile_batch(
        hostile_account, "OTHER-1", sync_status=SyncStatus.SYNCED, remote_id=hostile.taken_id
    )
    batch = hostile_batch(hostile_account)
    hostile.mode = mode

    worker = run_in_thread(Worker(concurrency=2, once=True).run)
    worker.join(timeout=DEADLINE + SLACK)

    assert not worker.is_alive()
    assert assert_not_stuck(batch, settings).outcome == PUSH_OUTCOME[mode]
    assert_no_secret(*texts_of(batch, caplog))
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.django_db(transaction=True)
def test_a_stopped_worker_returns_by_the_deadline_of_a_dripping_push(
    hostile: HostileIsometric, hostile_account: IsometricAccount, settings: Settings
) -> None:
    batch = hostile_batch(hostile_account)
    hostile.mode = "drip"
    worker = Worker(concurrency=2)
    thread = run_in_thread(worker.run)
    wait_for(lambda: any(each.method == "POST" for each in hostile.received))

    stopped = time.monotonic()
    worker.stop()
    thread.join(timeout=DEADLINE + SLACK)

    assert not thread.is_alive()
    assert time.monotonic() - stopped < DEADLINE + SLACK
    assert assert_not_stuck(batch, settings).outcome == AttemptOutcome.RETRY


@pytest.mark.django_db(transaction=True)
def test_the_sync_worker_command_records_a_broken_answer(
    hostile: HostileIsometric, hostile_account: IsometricAccount, settings: Settings
) -> None:
    batch = hostile_batch(hostile_account)
    hostile.mode = "truncated_json"

    code, output = run_manage("sync_worker", "--once", timeout=30, ISOMETRIC_DEADLINE=DEADLINE)

    assert code == 0, output
    assert assert_not_stuck(batch, settings).outcome == AttemptOutcome.RETRY
    assert_no_secret(output)


def test_an_outage_longer_than_ten_attempts_fails_nothing(
    emulator: Emulator,
    account: IsometricAccount,
    known_facility: Facility,
    known_feedstock_type: FeedstockType,
    settings: Settings,
) -> None:
    settings.SYNC_BACKOFF_BASE = 0.001
    settings.SYNC_BACKOFF_CAP = 0.002
    references = [f"OUTAGE-{n}" for n in range(3)]
    for reference in references:
        make_batch(known_facility, [known_feedstock_type], supplier_reference_id=reference)
    emulator.configure(error_503_rate=1.0, retry_after_seconds=0)

    for _ in range(12):
        time.sleep(0.005)
        assert push_due() == [AttemptOutcome.RETRY] * 3
    emulator.configure(error_503_rate=0.0)
    for _ in range(3):
        time.sleep(0.005)
        push_due()

    batches = ProductionBatch.objects.filter(supplier_reference_id__in=references)
    assert {(b.sync_status, b.sync_attempts) for b in batches} == {(SyncStatus.SYNCED, 13)}
    counts = emulator.stats()["created_by_supplier_reference_id"]
    assert isinstance(counts, dict)
    assert {reference: counts.get(reference) for reference in references} == dict.fromkeys(
        references, 1
    )


# The pull


def mirrored(account: IsometricAccount) -> set[str]:
    return set(account.batches.values_list("supplier_reference_id", flat=True))


GOOD = {"HOSTILE-1", "HOSTILE-2", "HOSTILE-3"}


@pytest.mark.parametrize("mode", UNREADABLE_NODE_MODES)
def test_a_pull_skips_only_the_node_it_cannot_read(
    mode: str, hostile: HostileIsometric, hostile_account: IsometricAccount
) -> None:
    hostile.mode = mode

    result = sync.pull(hostile_account)

    assert mirrored(hostile_account) == GOOD
    assert len(result.skipped) == 1
    hostile_account.refresh_from_db()
    assert "1 skipped, e.g. " in hostile_account.last_pull_summary


def test_a_pull_of_an_id_another_batch_holds_keeps_every_row_storable(
    hostile: HostileIsometric, hostile_account: IsometricAccount
) -> None:
    """Isometric lists the taken id under a reference a batch not yet sent has here."""
    hostile_batch(
        hostile_account, "OTHER-1", sync_status=SyncStatus.SYNCED, remote_id=hostile.taken_id
    )
    unsent = hostile_batch(hostile_account, "HOSTILE-901")
    hostile.mode = "taken_id"

    result = sync.pull(hostile_account)

    assert mirrored(hostile_account) == GOOD | {"OTHER-1", "HOSTILE-901"}
    assert result.skipped == [
        f"{hostile.taken_id}: its supplier reference is already a batch's not yet sent"
    ]
    unsent.refresh_from_db()
    assert unsent.remote_id is None


@pytest.mark.parametrize(
    ("mode", "error_status"),
    [(mode, None) for mode in PAGE_FAILURES] + [(mode, 503) for mode in BROKEN_BODIES],
)
def test_a_failed_pull_is_recorded_and_the_next_account_is_pulled(
    mode: str,
    error_status: int | None,
    hostile: HostileIsometric,
    hostile_account: IsometricAccount,
    emulator: Emulator,
) -> None:
    healthy = make_account("B healthy", emulator=emulator)
    IsometricAccount.objects.update(pull_due_at=None)
    hostile.mode = mode
    hostile.error_status = error_status

    with pytest.raises(sync.PullFailed):
        sync.pull(hostile_account)
    hostile.mode = mode  # afresh: unauthorized_once refuses again
    started = time.monotonic()
    while sync.pull_next_due():
        pass

    assert time.monotonic() - started < DEADLINE + SLACK
    hostile_account.refresh_from_db()
    healthy.refresh_from_db()
    assert hostile_account.last_pull_summary.startswith("The last refresh failed: ")
    assert_no_secret(hostile_account.last_pull_summary)
    assert healthy.last_pulled_at is not None
    assert "failed" not in healthy.last_pull_summary
    assert healthy.batches.count() == len(emulator.production_batches())


@pytest.mark.parametrize("mode", ["normal", "ignore_filter", "flaky_pages", "taken_id"])
def test_a_pull_mirrors_every_readable_answer(
    mode: str, hostile: HostileIsometric, hostile_account: IsometricAccount
) -> None:
    hostile.mode = mode

    sync.pull(hostile_account)

    assert mirrored(hostile_account) >= GOOD


def test_a_pull_writes_only_its_own_accounts_rows(
    hostile: HostileIsometric, hostile_account: IsometricAccount
) -> None:
    """Two organisations whose Isometric ids collide: each account keeps its own batches."""
    with HostileIsometric() as elsewhere:
        elsewhere.batches = [
            remote_batch(n, display_name=f"Elsewhere kiln {n}") for n in range(1, 4)
        ]
        other_account = make_account(
            "C elsewhere", base_url=elsewhere.base_url, client_secret=SECRET, access_token=TOKEN
        )
        sync.pull(hostile_account)
        sync.pull(other_account)
        sync.pull(hostile_account)

    for account, name in [(hostile_account, "Hostile kiln"), (other_account, "Elsewhere kiln")]:
        batches = account.batches.select_related("facility").prefetch_related("feedstock_types")
        assert sorted(b.display_name for b in batches) == [f"{name} {n}" for n in range(1, 4)]
        assert {b.facility.account_id for b in batches} == {account.pk}
        assert {f.account_id for b in batches for f in b.feedstock_types.all()} == {account.pk}
    assert ProductionBatch.objects.count() == 6


# "In Isometric"


@pytest.fixture
def member(client: DjangoClient, hostile_account: IsometricAccount) -> Iterator[DjangoClient]:
    user: User = make_user("hostile-operator", operator=True)
    hostile_account.members.add(user)
    log_in(client, user)
    yield client


@pytest.mark.parametrize("mode", sorted(MODES))
def test_in_isometric_answers_every_mode_with_rows_or_a_reason(
    mode: str, hostile: HostileIsometric, member: DjangoClient
) -> None:
    hostile.mode = mode

    started = time.monotonic()
    response = member.get(URL)

    assert time.monotonic() - started < DEADLINE + SLACK
    assert response.status_code == 200
    page = response.content.decode()
    assert_no_secret(page)
    if mode in PAGE_FAILURES:
        assert 'class="banner banner-error problem" role="alert"' in page
    else:
        assert all(f'<div class="sub">{reference}</div>' in page for reference in GOOD)
    unreadable = "that the portal cannot read" in page
    assert unreadable == (mode in UNREADABLE_NODE_MODES)
    if unreadable:
        assert "ptb_HOSTILE0000000000901" in page  # the page's bad node, by its id


def test_a_reference_listed_under_two_ids_is_mirrored_once(
    hostile: HostileIsometric, hostile_account: IsometricAccount
) -> None:
    hostile.batches[1]["supplier_reference_id"] = "HOSTILE-1"

    result = sync.pull(hostile_account)

    assert mirrored(hostile_account) == {"HOSTILE-1", "HOSTILE-3"}
    assert [reason.split(":")[0] for reason in result.skipped] == [hostile.batches[1]["id"]]
