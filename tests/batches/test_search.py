import pytest
from django.db import connection

from batches import search
from batches.models import ProductionBatch
from batches.selectors import filtered_batches
from tests.factories import make_batch

pytestmark = pytest.mark.django_db


def found(term: str) -> list[str]:
    return sorted(
        b.supplier_reference_id
        for b in filtered_batches(ProductionBatch.objects.all(), {"q": term})
    )


def test_search_follows_edits_and_deletes() -> None:
    batch = make_batch(supplier_reference_id="REF-alpha", display_name="Birch chips")
    assert found("birch") == ["REF-alpha"]
    ProductionBatch.objects.filter(pk=batch.pk).update(
        display_name="Oak chips", remote_id="ptb_ZZZZ9999ZZZZ9999"
    )
    assert found("birch") == []
    assert found("oak chips") == ["REF-alpha"]
    assert found("zzzz9999") == ["REF-alpha"]
    batch.delete()
    assert found("oak") == []


@pytest.mark.parametrize("term", ["ÉT", "É-A", "ÉTÉ-aB1"])
def test_a_batch_is_found_by_its_own_non_ascii_reference(term: str) -> None:
    """The database lowers the term as it lowered the text (SQLite only ASCII letters)."""
    make_batch(supplier_reference_id="ÉTÉ-Ab1")
    assert found(term) == ["ÉTÉ-Ab1"]


def test_common_terms_are_found_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "RARE_TERM_LIMIT", 3)
    for n in range(5):
        make_batch(supplier_reference_id=f"REF-common-{n}")
    assert found("common") == [f"REF-common-{n}" for n in range(5)]


def test_search_index_is_restored_after_the_table_is_rebuilt() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite keeps its trigram table with triggers")
    make_batch(supplier_reference_id="REF-before")
    with connection.cursor() as cursor:
        # What SQLite's table rebuild (a Django migration altering the table) leaves behind.
        cursor.execute("DROP TRIGGER batches_search_insert")
        cursor.execute("DELETE FROM batches_search")
    make_batch(supplier_reference_id="REF-during")
    search.ensure_search_index()
    make_batch(supplier_reference_id="REF-after")
    assert found("ref-") == ["REF-after", "REF-before", "REF-during"]
    assert found("during") == ["REF-during"]


def test_postgresql_search_uses_its_trigram_index() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'batch_search_trgm_idx'")
        assert "gin_trgm_ops" in cursor.fetchone()[0]
