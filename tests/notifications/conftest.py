"""Accounts A and B, their people, and events made as the sync queue makes them."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from batches.models import ProductionBatch, SyncStatus
from batches.sync.queue import Outcome, Paused, Refused, Retry, claim_due, record
from isometric.errors import FieldError
from portal.models import IsometricAccount
from tests.factories import make_account, make_batch, make_user


@dataclass
class People:
    account: IsometricAccount  # A
    other_account: IsometricAccount  # B
    operator: User  # an operator of A
    admin: User  # a credential admin of A (no batch permissions)
    other_operator: User  # an operator of B


@pytest.fixture
def people(db: None) -> People:
    account = make_account("Alderley Char")
    other_account = make_account("Brockwell Char")
    operator = make_user("olivia", operator=True, email="olivia@example.com")
    admin = make_user("carl", credential_admin=True, email="carl@example.com")
    other_operator = make_user("otto", operator=True, email="otto@example.com")
    account.members.add(operator, admin)
    other_account.members.add(other_operator)
    return People(account, other_account, operator, admin, other_operator)


def settle(batch: ProductionBatch, outcome: Outcome) -> None:
    """Claim the batch and record an outcome of pushing it, as a worker does."""
    ProductionBatch.objects.filter(pk=batch.pk).update(
        sync_status=SyncStatus.PENDING, next_attempt_at=timezone.now()
    )
    [claim] = [claim for claim in claim_due(100) if claim.batch.pk == batch.pk]
    record(claim, outcome, timezone.now(), 0.1)


def reference_of(reference: str) -> dict[str, Any]:
    """The batch's reference if one is given (else the factory makes one)."""
    return {"supplier_reference_id": reference} if reference else {}


def refused_batch(account: IsometricAccount, reference: str = "") -> ProductionBatch:
    """A batch Isometric refused (422), through the queue."""
    batch = make_batch(account=account, **reference_of(reference))
    error = FieldError(("body", "facility_id"), "Unknown facility", "value_error")
    settle(batch, Refused("Isometric refused it", [error]))
    return batch


def failed_batch(account: IsometricAccount, reference: str = "") -> ProductionBatch:
    """A batch the worker gave up on, through the queue."""
    batch = make_batch(
        account=account,
        failing_since=timezone.now() - timedelta(days=4),
        **reference_of(reference),
    )
    settle(batch, Retry("Isometric answered 500", possibly_sent=False, http_status=500))
    return batch


def refuse_credentials(account: IsometricAccount) -> None:
    """Isometric refuses the account's credentials while a batch is pushed."""
    settle(make_batch(account=account), Paused("401: not authenticated", False, 401))


def later(hours: float) -> datetime:
    return timezone.now() + timedelta(hours=hours)
