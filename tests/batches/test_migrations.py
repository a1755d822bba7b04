"""The migration that gives every row an account keeps every batch, facility and feedstock type,
and puts each where its organisation can use it (see its docstring for the rules)."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import StateApps

BEFORE = [("batches", "0005_remote_id_in_account"), ("portal", "0002_pull_schedule")]
AFTER = [("batches", "0006_every_row_has_an_account")]

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def before() -> Iterator[StateApps]:
    """The models as they were before the migration, with an empty database to fill."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    yield executor.loader.project_state(BEFORE).apps
    MigrationExecutor(connection).migrate(executor.loader.graph.leaf_nodes())


def migrate() -> StateApps:
    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    return executor.loader.project_state(AFTER).apps


def make_account(apps: StateApps, name: str) -> Any:
    return apps.get_model("portal", "IsometricAccount").objects.create(name=name)


def make_batch(
    apps: StateApps, reference: str, facility: Any, feedstock: Any, **fields: Any
) -> Any:
    moment = datetime(2026, 5, 1, tzinfo=UTC)
    batch = apps.get_model("batches", "ProductionBatch").objects.create(
        supplier_reference_id=reference,
        facility=facility,
        started_at=moment,
        ended_at=moment,
        mass_magnitude=1,
        mass_unit="tonne",
        **fields,
    )
    batch.feedstock_types.add(feedstock)
    return batch


def make_facility_and_feedstock(apps: StateApps) -> tuple[Any, Any]:
    facility = apps.get_model("batches", "Facility").objects.create(
        isometric_id="fcl_0000000000000000001", name="Kiln"
    )
    feedstock = apps.get_model("batches", "FeedstockType").objects.create(
        isometric_id="ftt_0000000000000000001", name="Wood"
    )
    return facility, feedstock


def test_with_several_accounts_each_gets_its_own_facilities_and_orphans_are_held(
    before: StateApps,
) -> None:
    facility, feedstock = make_facility_and_feedstock(before)
    first, second = make_account(before, "First"), make_account(before, "Second")
    make_batch(before, "REF-1", facility, feedstock, account=first)
    make_batch(before, "REF-2", facility, feedstock, account=second)
    make_batch(before, "REF-orphan", facility, feedstock)

    apps = migrate()

    Batch = apps.get_model("batches", "ProductionBatch")
    Account = apps.get_model("portal", "IsometricAccount")
    held = Account.objects.get(name="Unassigned batches")
    assert held.connection_status == "rejected"  # nothing is sent without its credentials
    assert held.encrypted_client_secret == ""
    for reference, name in [("REF-1", "First"), ("REF-2", "Second"), ("REF-orphan", held.name)]:
        batch = Batch.objects.get(supplier_reference_id=reference)
        assert batch.account.name == name
        assert batch.facility.account_id == batch.account_id
        assert batch.facility.isometric_id == "fcl_0000000000000000001"
        [linked] = batch.feedstock_types.all()
        assert (linked.account_id, linked.isometric_id) == (
            batch.account_id,
            feedstock.isometric_id,
        )
    for account in Account.objects.all():
        assert account.facilities.count() == 1 and account.feedstock_types.count() == 1


def test_with_one_account_the_orphans_join_it(before: StateApps) -> None:
    facility, feedstock = make_facility_and_feedstock(before)
    only = make_account(before, "Only")
    make_batch(before, "REF-orphan", facility, feedstock)

    apps = migrate()

    batch = apps.get_model("batches", "ProductionBatch").objects.get()
    assert batch.account_id == only.pk and batch.facility.account_id == only.pk
    assert apps.get_model("portal", "IsometricAccount").objects.count() == 1


def test_without_accounts_facilities_are_kept_in_the_holding_account(before: StateApps) -> None:
    make_facility_and_feedstock(before)

    apps = migrate()

    facility = apps.get_model("batches", "Facility").objects.get()
    assert facility.account.name == "Unassigned batches"


def test_an_empty_portal_gets_no_account(before: StateApps) -> None:
    apps = migrate()

    assert not apps.get_model("portal", "IsometricAccount").objects.exists()
