"""Writes to production batches that views and commands share."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from batches.forms import DUPLICATE_REFERENCE, ProductionBatchForm
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
    batch.last_error = ""
    try:
        with transaction.atomic():
            if not batch._state.adding:
                _lock_editable(batch.pk)
            batch.save()
            form.save_m2m()
    except IntegrityError:
        taken = ProductionBatch.objects.filter(supplier_reference_id=batch.supplier_reference_id)
        if not taken.exclude(pk=batch.pk).exists():
            raise
        form.add_error("supplier_reference_id", DUPLICATE_REFERENCE)
        return None
    return batch


def _lock_editable(pk: int) -> None:
    current = ProductionBatch.objects.select_for_update().only("sync_status").get(pk=pk)
    if not current.is_editable:
        raise BatchNotEditable(pk)
