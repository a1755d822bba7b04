"""Writes to production batches that views and commands share."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from batches.forms import DUPLICATE_REFERENCE, ProductionBatchForm, reference_taken
from batches.history import Via, log_batch_changes
from batches.models import ProductionBatch, SyncStatus


class BatchNotEditable(Exception):
    """The batch was synced, or claimed for sync, after the operator opened the form."""


def save_batch(
    form: ProductionBatchForm, user: AbstractBaseUser | AnonymousUser
) -> ProductionBatch | None:
    """Save a valid form's batch as due for sync.

    Returns None, with the error on the form, when another batch took the same supplier
    reference between validation and saving.
    """
    batch: ProductionBatch = form.save(commit=False)
    if batch._state.adding and user.is_authenticated:
        batch.created_by_id = user.pk
    batch.sync_status = SyncStatus.PENDING
    batch.next_attempt_at = timezone.now()
    batch.sync_attempts = 0
    batch.failing_since = None
    batch.last_error = ""
    batch.rejection_errors = []
    try:
        with transaction.atomic():
            if not batch._state.adding:
                # The worker may have tried it since the form was loaded: whether that try
                # reached Isometric is the worker's to say, not the form's stale copy.
                batch.possibly_sent = _lock_editable(batch.pk).possibly_sent
            batch.save()
            form.save_m2m()
    except IntegrityError:
        if not reference_taken(batch.supplier_reference_id, batch.account, exclude_pk=batch.pk):
            raise
        form.add_error("supplier_reference_id", DUPLICATE_REFERENCE)
        return None
    return batch


def retry_batch(batch: ProductionBatch, user: AbstractBaseUser | AnonymousUser) -> bool:
    """Send a batch the worker gave up on again, from a fresh count of attempts. False when it
    was not failed (any more)."""
    updated = ProductionBatch.objects.filter(pk=batch.pk, sync_status=SyncStatus.FAILED).update(
        sync_status=SyncStatus.PENDING,
        sync_attempts=0,
        failing_since=None,
        next_attempt_at=timezone.now(),
        updated_at=timezone.now(),
    )
    if updated:
        status = (SyncStatus.FAILED, SyncStatus.PENDING)
        log_batch_changes([(batch, {"sync_status": status})], Via.FORM, actor=user)
    return updated == 1


def _lock_editable(pk: int) -> ProductionBatch:
    current = (
        ProductionBatch.objects.select_for_update().only("sync_status", "possibly_sent").get(pk=pk)
    )
    if not current.is_editable:
        raise BatchNotEditable(pk)
    return current
