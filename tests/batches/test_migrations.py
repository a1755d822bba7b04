"""Migrations that move data: what an earlier version stored arrives whole."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


@pytest.mark.django_db(transaction=True)
def test_an_imports_list_of_rejected_rows_becomes_rows_of_their_table() -> None:
    before, after = [("batches", "0003_batch_imports")], [("batches", "0004_rejected_rows_table")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    account = old.get_model("portal", "IsometricAccount").objects.create(name="Kilns Ltd")
    old.get_model("batches", "BatchImport").objects.create(
        account=account,
        file_name="season.csv",
        rejected=[
            {
                "row": 2,
                "kind": "invalid",
                "values": {"mass_magnitude": "x"},
                "errors": {"Mass": ["Enter a number."]},
            },
            {
                "row": 5,
                "kind": "conflicting",
                "values": {},
                "errors": {"Supplier reference": ["Taken."]},
            },
        ],
    )

    executor = MigrationExecutor(connection)
    executor.migrate(after)

    new = executor.loader.project_state(after).apps
    rows = new.get_model("batches", "RejectedRow").objects.order_by("number")
    assert [(row.number, row.conflicting, row.values, row.errors) for row in rows] == [
        (2, False, {"mass_magnitude": "x"}, {"Mass": ["Enter a number."]}),
        (5, True, {}, {"Supplier reference": ["Taken."]}),
    ]
    MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())
