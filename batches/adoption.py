"""Batches recorded before the portal had an Isometric account go to the first one it gets."""

from typing import Any

from batches.models import ProductionBatch
from portal.models import IsometricAccount


def adopt_unassigned_batches(instance: IsometricAccount, created: bool, **kwargs: Any) -> None:
    """post_save of an account: when it is the portal's only one, it takes the batches that no
    account holds. With several, an operator chooses when editing each batch."""
    if created and not IsometricAccount.objects.exclude(pk=instance.pk).exists():
        ProductionBatch.objects.filter(account=None).update(account=instance)
