import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from batches import search
from batches.folding import PLAIN_LETTERS, fold
from batches.models import ProductionBatch
from batches.selectors import filtered_batches
from tests.factories import make_batch, make_facility, make_feedstock_type

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


@pytest.mark.parametrize("term", ["ÉT", "É-A", "ÉTÉ-aB1", "ete-ab1", "été", "ETE"])
def test_a_batch_is_found_by_its_own_non_ascii_reference(term: str) -> None:
    make_batch(supplier_reference_id="ÉTÉ-Ab1")
    assert found(term) == ["ÉTÉ-Ab1"]


@pytest.mark.parametrize("term", ["elan", "ELAN", "Élan", "élan", "ÉLAN", "éLaN", "la", "LÀN"])
@pytest.mark.parametrize("common", [False, True])
def test_search_ignores_accents_and_case(
    term: str, common: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found through the trigram index (a rare term) and by reading the list (a common one)."""
    if common:
        monkeypatch.setattr(search, "RARE_TERM_LIMIT", 1)
    make_batch(supplier_reference_id="REF-1", display_name="élan vital")
    make_batch(supplier_reference_id="REF-2", display_name="ELAN")
    make_batch(supplier_reference_id="ÉLAN-3")
    make_batch(supplier_reference_id="REF-4", display_name="Elbe")
    assert found(term) == ["REF-1", "REF-2", "ÉLAN-3"]


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("Straße 5", "strasse"),
        ("STRASSE 5", "straße"),
        ("Æbeltoft", "aebel"),
        ("Łódź", "lodz"),
        ("Søndergård", "SONDERGARD"),
        ("Đà Nẵng", "da nang"),
        ("İzmir", "izmir"),
        ("Şanlıurfa", "sanliurfa"),  # noqa: RUF001
    ],
)
def test_search_folds_latin_letters_of_many_languages(text: str, term: str) -> None:
    make_batch(supplier_reference_id="REF-x", display_name=text)
    assert found(term) == ["REF-x"]


def test_accented_terms_find_only_what_they_spell() -> None:
    make_batch(supplier_reference_id="REF-cote", display_name="Côte")
    make_batch(supplier_reference_id="REF-cute", display_name="Cute")
    assert found("côte") == ["REF-cote"]
    assert found("COTE") == ["REF-cote"]
    assert found("ote") == ["REF-cote"]
    assert found("cu") == ["REF-cute"]


# Letters the folding maps, plain ones, digits and a separator: whatever an operator types.
LETTERS = [letter for letters in PLAIN_LETTERS.values() for letter in letters]
TEXT = st.text(st.sampled_from([*LETTERS, *"abcxyzABCXYZ019-_%*?["]), min_size=1, max_size=12)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(reference=TEXT, term=TEXT, cut=st.integers(0, 12), common=st.booleans())
def test_a_term_finds_the_batches_whose_folded_text_holds_it(
    reference: str, term: str, cut: int, common: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the letters, accents and case: the database folds as fold() does. Half the
    terms are a part of the reference, in another case."""
    monkeypatch.setattr(search, "RARE_TERM_LIMIT", 0 if common else 1000)
    if cut % 2:
        term = reference[cut // 2 : cut // 2 + 4].swapcase() or term
    with transaction.atomic():
        facility, feedstock_type = make_facility(), make_feedstock_type()
        make_batch(facility, [feedstock_type], supplier_reference_id=reference)
        expected = [reference] if fold(term) in fold(reference) else []
        assert found(term) == expected
        transaction.set_rollback(True)


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
