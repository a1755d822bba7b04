"""The queue: the batch table is the outbox, and this is the one place that changes a batch's
sync state.

A worker claims due rows (claim_due), pushes each outside any transaction, then records what
came of it (record) only if its claim still holds. A claim is a lease: when a worker dies, its
rows fall due again when the lease runs out, and because the claim set `possibly_sent`, the next
attempt looks the batch up in Isometric before posting it again.
"""

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from batches.history import Via, log_batch_changes
from batches.metrics import SYNC_ATTEMPTS
from batches.models import AttemptOutcome, ProductionBatch, SyncAttempt, SyncStatus, synced_state
from isometric.errors import FieldError
from isometric.http_errors import MAX_RETRY_AFTER
from isometric.models import ProductionBatch as RemoteBatch
from notifications.models import Kind
from notifications.services import record_batch_event
from portal.models import ConnectionStatus, IsometricAccount, RequestBudget

log = logging.getLogger(__name__)

LOST_ATTEMPT = (
    "The previous attempt did not finish within its lease (the worker stopped or lost touch); "
    "trying again, looking the batch up in Isometric first"
)
REFUSED_MESSAGE = "Isometric refused this batch. Correct the fields marked and save it."
KEPT_MESSAGE = (
    "Isometric refused to delete its copy, so it still holds the batch as it was before "
    "this correction; the corrected values are kept here. Isometric's reason: {reason}"
)
PAUSED_MESSAGE = (
    "Isometric refused this account's credentials, so sending is paused until an admin "
    "updates them."
)
# The statuses a batch's people are emailed about (notifications), as which kind of event.
NOTIFIED = {SyncStatus.REJECTED: Kind.BATCH_REJECTED, SyncStatus.FAILED: Kind.BATCH_FAILED}


@dataclass(frozen=True)
class Claim:
    batch: ProductionBatch
    token: str
    # An earlier attempt may have reached Isometric: look the batch up before posting it.
    look_up_first: bool
    due_at: datetime  # when it fell due, which a postponed push keeps its place in the queue by


# What an attempt came to: the push protocol's answer, which record() applies.


@dataclass(frozen=True)
class Synced:
    """Isometric holds the batch: created now, or found there (adopted, not sent again)."""

    remote: RemoteBatch
    adopted: bool
    http_status: int | None = 200

    @property
    def message(self) -> str:
        if self.adopted:
            return f"Isometric already had it as {self.remote.id}: adopted, not sent again"
        return f"Created as {self.remote.id}"


@dataclass(frozen=True)
class Refused:
    """Isometric refused the batch as it is (422): the operator must correct it."""

    message: str
    field_errors: list[FieldError]
    http_status: int | None = 422


@dataclass(frozen=True)
class Retry:
    """The attempt failed in a way that may pass: try again later. `possibly_sent`: Isometric
    may hold the batch now, so the next attempt looks it up first."""

    message: str
    possibly_sent: bool
    http_status: int | None = None
    retry_after: float | None = None
    words: str = ""  # the message as the operator reads it, when it is not in words already


@dataclass(frozen=True)
class Paused:
    """The account's credentials do not work: its batches wait, uncounted, for an admin."""

    message: str
    possibly_sent: bool
    http_status: int | None = None


@dataclass(frozen=True)
class Postponed:
    """Not sent: the account's next turn to call Isometric (portal.pace) is further off than a
    worker waits. Nothing failed, so nothing is counted: the batch keeps its place in the queue,
    claimed again once the turn is within a worker's wait."""

    possibly_sent: bool
    http_status: None = None


@dataclass(frozen=True)
class Kept:
    """Isometric refused to delete the batch (a correction's or a void's first step): it holds
    the batch as it was, under `remote_id`, and the operator is told why."""

    message: str
    remote_id: str
    http_status: int | None = None
    words: str = ""  # Isometric's reason, as the operator reads it


@dataclass(frozen=True)
class Voided:
    """The batch is gone from Isometric, or never reached it: voided."""

    reason: str
    http_status: int | None = None


Outcome = Synced | Refused | Retry | Paused | Postponed | Kept | Voided


def due_batches(now: datetime) -> QuerySet[ProductionBatch]:
    """Batches to push now: pending ones whose time has come and syncing ones whose worker's
    lease ran out (only unsettled batches have a next attempt), in accounts whose credentials
    Isometric has not refused and whose next turn to call it is within a worker's wait (the
    others' batches would only be claimed to be postponed, the whole backlog over and over)."""
    longest_wait = timedelta(seconds=settings.ISOMETRIC_MAX_TURN_WAIT)
    turn_far_off = RequestBudget.objects.filter(
        account=OuterRef("account"), next_at__gt=now + longest_wait
    )
    return (
        ProductionBatch.objects.filter(next_attempt_at__lte=now)
        .exclude(account__connection_status=ConnectionStatus.REJECTED)
        .exclude(Exists(turn_far_off))
        .order_by("next_attempt_at")
    )


def claim_due(limit: int) -> list[Claim]:
    """Take up to `limit` due batches for this worker: they become `syncing` under a lease.

    On PostgreSQL, SKIP LOCKED lets workers claim side by side without waiting on each other;
    SQLite's IMMEDIATE transactions let one writer in at a time. The UPDATE repeats the
    condition, so a row changed since it was read is not taken.
    """
    now = timezone.now()
    token = uuid.uuid4().hex
    with transaction.atomic():
        due = list(
            due_batches(now)
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", "possibly_sent", "sync_status", "next_attempt_at")[:limit]
        )
        if not due:
            return []
        # Due batches have a next attempt (due_batches filters on it).
        rows = {pk: (sent, cast(datetime, due_at)) for pk, sent, _, due_at in due}
        due_batches(now).filter(pk__in=rows).update(
            sync_status=SyncStatus.SYNCING,
            next_attempt_at=now + timedelta(seconds=settings.SYNC_LEASE),
            claim_token=token,
            possibly_sent=True,
            updated_at=now,
        )
        _record_lost_attempts([pk for pk, _, status, _ in due if status == SyncStatus.SYNCING], now)
    claimed = (
        ProductionBatch.objects.select_related("account", "facility")
        .prefetch_related("feedstock_types")
        .filter(claim_token=token)
    )
    return [Claim(batch, token, *rows[batch.pk]) for batch in claimed]


def _record_lost_attempts(pks: list[int], now: datetime) -> None:
    """Batches whose worker's lease ran out: that attempt ended unseen (the worker was killed
    or lost its database), so it is one that failed, in the batch's history like any other."""
    if not pks:
        return
    ProductionBatch.objects.filter(pk__in=pks).update(
        sync_attempts=F("sync_attempts") + 1, failing_since=Coalesce("failing_since", Value(now))
    )
    SyncAttempt.objects.bulk_create(
        SyncAttempt(
            batch_id=pk,
            started_at=now,
            duration_ms=0,
            outcome=AttemptOutcome.RETRY,
            message=LOST_ATTEMPT,
        )
        for pk in pks
    )


def release(claim: Claim) -> None:
    """Give back a claimed batch that was not tried (the worker is stopping): due at once."""
    ProductionBatch.objects.filter(
        pk=claim.batch.pk, claim_token=claim.token, sync_status=SyncStatus.SYNCING
    ).update(
        sync_status=SyncStatus.PENDING,
        claim_token="",
        next_attempt_at=timezone.now(),
        possibly_sent=claim.look_up_first,
        updated_at=timezone.now(),
    )


def record(
    claim: Claim, outcome: Outcome, started_at: datetime, seconds: float, deleted: str = ""
) -> AttemptOutcome | None:
    """Apply what came of an attempt to the batch, if the claim on it still holds, and add the
    attempt to the batch's history either way (None: postponed, not an attempt). `deleted`:
    the Isometric batch the attempt deleted first, a step of its own in the history."""
    batch = claim.batch
    if isinstance(outcome, Paused):
        _pause_account(batch.account, outcome.message)
    try:
        attempt, held = _apply(claim, outcome, started_at, seconds, deleted)
    except DatabaseError as exc:
        # What Isometric answered cannot be stored (an id another batch holds, a value out of
        # range): the batch is tried again, looked up first, rather than stuck.
        message = _unstorable(batch, outcome, exc)
        retry = Retry(message, possibly_sent=True, http_status=outcome.http_status)
        attempt, held = _apply(claim, retry, started_at, seconds, deleted)
    if attempt is None:
        log.debug("batch %s: not sent, its account's next turn is later", batch.pk)
        return None
    SYNC_ATTEMPTS.labels(attempt.outcome).inc()
    lost = "" if held else " (its lease had run out: the outcome was not applied)"
    log.info(
        "batch %s %s: %s [%s, %d ms] %s%s",
        batch.pk,
        batch.supplier_reference_id,
        attempt.get_outcome_display(),
        attempt.http_status or "-",
        attempt.duration_ms,
        attempt.message,
        lost,
        extra={
            "batch_id": batch.pk,
            "account_id": batch.account_id,
            "supplier_reference_id": batch.supplier_reference_id,
            "outcome": attempt.outcome,
            "http_status": attempt.http_status,
            "duration_ms": attempt.duration_ms,
            "applied": held,
        },
    )
    return AttemptOutcome(attempt.outcome)


@transaction.atomic
def _apply(
    claim: Claim, outcome: Outcome, started_at: datetime, seconds: float, deleted: str
) -> tuple[SyncAttempt | None, bool]:
    """Write the batch's new state under the claim and the attempt (none for a postponed one);
    whether the claim held."""
    current = (
        ProductionBatch.objects.select_for_update()
        .select_related("facility")
        .prefetch_related("feedstock_types")
        .filter(pk=claim.batch.pk, claim_token=claim.token, sync_status=SyncStatus.SYNCING)
        .first()
    )
    if deleted:
        SyncAttempt.objects.create(
            batch_id=claim.batch.pk,
            started_at=started_at,
            duration_ms=0,
            outcome=AttemptOutcome.DELETED,
            http_status=204,
            message=f"Deleted {deleted} in Isometric",
        )
    kind, message, changes = _settle(claim, current or claim.batch, outcome, started_at)
    if deleted:
        replaced = "" if isinstance(outcome, Voided) else deleted
        changes = {"remote_id": None, "replaced_remote_id": replaced} | changes
    if current is not None:
        ProductionBatch.objects.filter(pk=current.pk).update(
            **changes | {"claim_token": "", "updated_at": timezone.now()}
        )
        old = {name: (getattr(current, name), value) for name, value in changes.items()}
        log_batch_changes([(current, old)], Via.WORKER)
    if kind is None:
        return None, current is not None
    attempt = SyncAttempt.objects.create(
        batch_id=claim.batch.pk,
        started_at=started_at,
        duration_ms=round(seconds * 1000),
        outcome=kind,
        http_status=outcome.http_status,
        message=message[:500],
    )
    status = changes.get("sync_status")
    if current is not None and status in NOTIFIED:
        record_batch_event(
            NOTIFIED[status],
            account=claim.batch.account,
            batch_id=current.pk,
            status=status,
            key=str(attempt.pk),
        )
    return attempt, current is not None


def _settle(
    claim: Claim, batch: ProductionBatch, outcome: Outcome, started_at: datetime
) -> tuple[AttemptOutcome | None, str, dict[str, Any]]:
    """What the attempt is in the batch's history (outcome, message; none for a postponed
    one), and the batch's new sync columns: the one place an outcome becomes the batch's state.
    `batch` is the row as it is now: the operator may have corrected or voided it while the
    attempt ran."""
    counted = {"sync_attempts": F("sync_attempts") + 1}
    changed = batch.to_api() != claim.batch.to_api()
    again_now = {
        **counted,
        "sync_status": SyncStatus.PENDING,
        "next_attempt_at": timezone.now(),
        "failing_since": None,
        "last_error": "",
    }
    match outcome:
        case Synced(remote=remote, adopted=adopted):
            kind = AttemptOutcome.ADOPTED if adopted else AttemptOutcome.CREATED
            held = {
                "remote_id": remote.id,
                "uploaded_at": remote.uploaded_at or started_at,
                "possibly_sent": False,
            }
            if batch.void_reason:
                return kind, f"{outcome.message}; voided meanwhile", again_now | held
            if changed or (adopted and not batch.matches(remote)):
                message = f"{outcome.message}; changed meanwhile, so it is corrected next"
                return kind, message, again_now | held | {"replaced_remote_id": ""}
            changes = {
                **synced_state(),
                **counted,
                **held,
                "supplier_reference_id": remote.supplier_reference_id
                or batch.supplier_reference_id,
                "display_name": (remote.display_name or batch.display_name)[:100],
            }
            return kind, outcome.message, changes
        case Voided(reason=reason):
            return AttemptOutcome.VOIDED, f"Voided: {reason}", _voided(counted)
        case Kept(message=message, remote_id=remote_id, words=words):
            reason = words or message
            changes = {
                **counted,
                "next_attempt_at": None,
                "possibly_sent": False,
                "remote_id": remote_id,
                "void_reason": "",
            }
            if claim.batch.void_reason:
                changes |= {
                    "sync_status": SyncStatus.SYNCED,
                    "last_error": f"Not voided: Isometric refused to delete it. {reason}",
                }
            else:
                # A void asked for meanwhile cannot be done either: Isometric keeps the batch.
                changes |= {
                    "sync_status": SyncStatus.REJECTED,
                    "last_error": KEPT_MESSAGE.format(reason=reason),
                }
            return AttemptOutcome.REJECTED, message, changes
        case Refused() if batch.void_reason:
            # Isometric refused the batch, so there is nothing there to delete.
            return AttemptOutcome.VOIDED, outcome.message, _voided(counted)
        case Refused() if changed:
            return AttemptOutcome.REJECTED, f"{outcome.message}; changed meanwhile", again_now
        case Refused(field_errors=field_errors):
            changes = {
                **counted,
                "sync_status": SyncStatus.REJECTED,
                "possibly_sent": False,
                "next_attempt_at": None,
                "last_error": REFUSED_MESSAGE,
                "rejection_errors": [
                    [ProductionBatch.field_of(error.loc), error.msg] for error in field_errors
                ],
            }
            return AttemptOutcome.REJECTED, outcome.message, changes
        case Paused(possibly_sent=possibly_sent):
            changes = {
                "sync_status": SyncStatus.PENDING,
                "possibly_sent": possibly_sent,
                "next_attempt_at": timezone.now(),
                "last_error": PAUSED_MESSAGE,
            }
            return AttemptOutcome.PAUSED, outcome.message, changes
        case Postponed(possibly_sent=possibly_sent):
            # Due when it was: no batch is claimed while its account's turn is out of reach
            # (due_batches), and then the queue's oldest go first, this one among them. Its
            # values, a void or a correction asked for meanwhile, go then.
            changes = {
                "sync_status": SyncStatus.PENDING,
                "possibly_sent": possibly_sent,
                "next_attempt_at": claim.due_at,
            }
            return None, "", changes
        case Retry(
            message=message, possibly_sent=possibly_sent, retry_after=retry_after, words=words
        ):
            # Given up once the batch has kept failing for SYNC_GIVE_UP_AFTER: a time, not a
            # count, so an outage fails nothing.
            reason = (words or message).rstrip(".")
            now = timezone.now()
            failing_since = batch.failing_since or started_at
            changes = {**counted, "failing_since": failing_since, "possibly_sent": possibly_sent}
            if now - failing_since >= timedelta(seconds=settings.SYNC_GIVE_UP_AFTER):
                since = f"{timezone.localtime(failing_since):%-d %b %Y %H:%M %Z}"
                changes |= {
                    "sync_status": SyncStatus.FAILED,
                    "next_attempt_at": None,
                    "last_error": f"Gave up after failing since {since}. The last time: {reason}.",
                }
                return AttemptOutcome.FAILED, message, changes
            delay = backoff(batch.sync_attempts + 1, retry_after)
            changes |= {
                "sync_status": SyncStatus.PENDING,
                "next_attempt_at": now + timedelta(seconds=delay),
                "last_error": f"{reason}. The portal tries again by itself.",
            }
            return AttemptOutcome.RETRY, f"{message}; next attempt in {delay:.0f} s", changes


def _voided(counted: dict[str, Any]) -> dict[str, Any]:
    """The sync columns of a batch voided: nothing of it in Isometric, nothing left to do."""
    return {
        **counted,
        "sync_status": SyncStatus.VOIDED,
        "next_attempt_at": None,
        "possibly_sent": False,
        "remote_id": None,
        "replaced_remote_id": "",
        "failing_since": None,
        "last_error": "",
        "voided_at": timezone.now(),
    }


def backoff(attempts: int, retry_after: float | None = None) -> float:
    """Seconds before attempt number `attempts + 1`: exponential, capped, jittered (so batches
    that failed together do not come back together), and never sooner than Retry-After."""
    doublings = min(attempts - 1, 32)  # past that the cap has long been reached
    ceiling = min(settings.SYNC_BACKOFF_CAP, settings.SYNC_BACKOFF_BASE * 2**doublings)
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, min(retry_after or 0.0, MAX_RETRY_AFTER))


def _unstorable(batch: ProductionBatch, outcome: Outcome, exc: DatabaseError) -> str:
    if isinstance(exc, IntegrityError) and isinstance(outcome, Synced):
        remote_id = outcome.remote.id
        holder = (
            ProductionBatch.objects.filter(account_id=batch.account_id, remote_id=remote_id)
            .exclude(pk=batch.pk)
            .first()
        )
        if holder is not None:
            return (
                f"Isometric answered that this batch is {remote_id}, which the batch "
                f"{holder.supplier_reference_id} here already is"
            )
    return f"Isometric's answer could not be stored ({type(exc).__name__})"


def _pause_account(account: IsometricAccount, message: str) -> None:
    """Mark the account refused, unless its credentials changed since this push began."""
    IsometricAccount.objects.filter(pk=account.pk, updated_at=account.updated_at).update(
        connection_status=ConnectionStatus.REJECTED,
        connection_message=f"Isometric refused the credentials while sending a batch: {message}",
        checked_at=timezone.now(),
    )
