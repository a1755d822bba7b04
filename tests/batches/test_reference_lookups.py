"""A batch is found by its supplier reference through the unique index, not by scanning the
account's batches (every form post and imported row looks its reference up)."""

import pytest
from django.db import connection

from batches.models import ProductionBatch
from tests.factories import default_account, make_batch

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's planner only")
def test_a_reference_lookup_uses_the_unique_index() -> None:
    make_batch(supplier_reference_id="R-1")
    account = default_account()

    plan = ProductionBatch.objects.with_references(account.pk, ["R-1", "R-2"]).explain()

    assert "batch_reference_unique_in_account" in plan, plan
    assert list(
        ProductionBatch.objects.with_references(account.pk, ["R-1", "R-2"]).values_list(
            "supplier_reference_id", flat=True
        )
    ) == ["R-1"]
