"""Writes to production batches that views and commands share."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from batches.forms import DUPLICATE_REFERENCE, ProductionBatchForm, reference_taken
from batches.history import Via, log_batch_changes
from batches.models import ProductionBatch, SyncStatus


class BatchNotEditable(Exception):
    """The batch was voided, or a void of it begun, after the operator opened the form."""


def save_batch(
    form: ProductionBatchForm, user: AbstractBaseUser | AnonymousUser
) -> ProductionBatch | None:
    """Save a valid form's batch as due for sync, whatever its state: not yet sent, the new
    values are what is sent; being sent, they are sent once that push settles (the worker sees
    the change when it records the push); in Isometric, saving is a correction (the worker
    deletes Isometric's copy, then creates the corrected one).

    Returns None, with the error on the form, when another batch took the same supplier
    reference between validation and saving.
    """
    batch: ProductionBatch = form.save(commit=False)
    try:
        with transaction.atomic():
            if batch._state.adding:
                if user.is_authenticated:
                    batch.created_by_id = user.pk
                batch.save()
            else:
                _save_edit(batch, form)
            form.save_m2m()
    except IntegrityError:
        if not reference_taken(batch.supplier_reference_id, batch.account, exclude_pk=batch.pk):
            raise
        form.add_error("supplier_reference_id", DUPLICATE_REFERENCE)
        return None
    return batch


def _save_edit(batch: ProductionBatch, form: ProductionBatchForm) -> None:
    """Write the form's values, and set the batch to be sent unless a push of it is under way
    (that push's outcome is recorded first). The worker's columns (Isometric's id, whether it
    may hold the batch) are never taken from the form's copy: the worker may have written them
    since the form was loaded."""
    current = ProductionBatch.objects.select_for_update().get(pk=batch.pk)
    if current.void_reason:
        raise BatchNotEditable(batch.pk)
    if current.sync_status == SyncStatus.SYNCED and not form.changes_batch():
        return  # nothing to correct
    columns = {field.name for field in ProductionBatch._meta.concrete_fields}
    values = [name for name in form.fields if name in columns and name != "account"]
    if current.sync_status == SyncStatus.SYNCING:
        batch.save(update_fields=values)
        return
    batch.sync_status = SyncStatus.PENDING
    batch.next_attempt_at = timezone.now()
    batch.sync_attempts = 0
    batch.failing_since = None
    batch.last_error = ""
    batch.rejection_errors = []
    sync = ["sync_status", "next_attempt_at", "sync_attempts", "failing_since", "last_error"]
    batch.save(update_fields=[*values, *sync, "rejection_errors"])


def void_batch(batch: ProductionBatch, reason: str) -> bool:
    """Void the batch: deleted in Isometric by the worker if it may be there (a push under way
    finishes first), kept here as voided. False when it was voided, or being voided, already."""
    with transaction.atomic():
        current = ProductionBatch.objects.select_for_update().get(pk=batch.pk)
        if current.void_reason:
            return False
        current.void_reason = reason
        if current.sync_status == SyncStatus.SYNCING:
            current.save(update_fields=["void_reason", "updated_at"])
            return True  # the worker records its push, then deletes what it sent
        if current.remote_id or current.possibly_sent:
            current.sync_status = SyncStatus.PENDING
            current.next_attempt_at = timezone.now()
        else:
            current.sync_status = SyncStatus.VOIDED
            current.next_attempt_at = None
            current.voided_at = timezone.now()
            current.last_error = ""
        current.save(
            update_fields=[
                "void_reason",
                "sync_status",
                "next_attempt_at",
                "voided_at",
                "last_error",
                "updated_at",
            ]
        )
    return True


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


# With the supplier reference, what makes a posted create form the batch a user already saved.
SAME_SUBMISSION_FIELDS = (
    "facility",
    "started_at",
    "ended_at",
    "mass_magnitude",
    "mass_unit",
    "mass_standard_deviation",
    "display_name",
)


def earlier_submission(
    form: ProductionBatchForm, user: AbstractBaseUser | AnonymousUser
) -> ProductionBatch | None:
    """The batch a create form already saved when the same form arrives again (the Back button,
    a double click, a resubmitted POST, or two at once): its reference is taken in the account
    by a batch this user created with the very same values. Call once validating or saving the
    form has failed."""
    if form.instance.pk is not None or not user.is_authenticated:
        return None
    # A taken reference is a field error, which drops it from cleaned_data: clean it again.
    try:
        reference = form.fields["supplier_reference_id"].clean(form["supplier_reference_id"].data)
    except ValidationError:
        return None
    values = form.cleaned_data
    compared = (*SAME_SUBMISSION_FIELDS, "feedstock_types")
    if not reference or form.instance.account_id is None or not all(n in values for n in compared):
        return None
    earlier = (
        ProductionBatch.objects.with_references(form.instance.account_id, [reference])
        .filter(created_by_id=user.pk)
        .first()
    )
    if earlier is None or earlier.kind != form.instance.kind:
        return None
    return earlier if has_values(earlier, values) else None


def has_values(batch: ProductionBatch, values: dict[str, Any]) -> bool:
    """Whether the batch holds these values of a batch form (its reference aside)."""
    return all(values[name] == getattr(batch, name) for name in SAME_SUBMISSION_FIELDS) and set(
        values["feedstock_types"]
    ) == set(batch.feedstock_types.all())
