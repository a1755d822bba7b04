"""Substring search over a batch's display name, supplier reference and Isometric id, whatever
the accents and the case (the text and the term are folded alike: batches.folding).

The database indexes `ProductionBatch.search_text` by trigrams so that a rare term is found
without reading every row: PostgreSQL with a pg_trgm GIN index (its planner picks between that
index and the list's order by itself), SQLite with an FTS5 trigram table kept by triggers.
Django's schema editor knows neither, and SQLite rebuilds a table to alter it (dropping its
triggers), so `ensure_search_index` runs after every migrate and restores what is missing.
"""

from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import QuerySet, Value

from batches.folding import SQLITE_FUNCTION, Folded
from batches.models import ProductionBatch

TABLE = ProductionBatch._meta.db_table
# Past this many trigram matches a term is common, and walking the list's own order finds a
# page of matches sooner than sorting them all.
RARE_TERM_LIMIT = 1000

_SQLITE_SEARCH_INDEX = [
    f"""CREATE VIRTUAL TABLE IF NOT EXISTS batches_search USING fts5(
        search_text, content='{TABLE}', content_rowid='id', tokenize='trigram')""",
    f"""CREATE TRIGGER IF NOT EXISTS batches_search_insert AFTER INSERT ON {TABLE} BEGIN
        INSERT INTO batches_search(rowid, search_text) VALUES (new.id, new.search_text);
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS batches_search_delete AFTER DELETE ON {TABLE} BEGIN
        INSERT INTO batches_search(batches_search, rowid, search_text)
        VALUES ('delete', old.id, old.search_text);
    END""",
    f"""CREATE TRIGGER IF NOT EXISTS batches_search_update
    AFTER UPDATE OF display_name, supplier_reference_id, remote_id ON {TABLE} BEGIN
        INSERT INTO batches_search(batches_search, rowid, search_text)
        VALUES ('delete', old.id, old.search_text);
        INSERT INTO batches_search(rowid, search_text) VALUES (new.id, new.search_text);
    END""",
]
_POSTGRESQL_SEARCH_INDEX = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    f"""CREATE INDEX IF NOT EXISTS batch_search_trgm_idx
        ON {TABLE} USING gin (search_text gin_trgm_ops)""",
]


def ensure_search_index(using: str = "default", **kwargs: Any) -> None:
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for statement in _POSTGRESQL_SEARCH_INDEX:
                cursor.execute(statement)
        elif connection.vendor == "sqlite":
            complete = _sqlite_search_objects(connection) == len(_SQLITE_SEARCH_INDEX)
            for statement in _SQLITE_SEARCH_INDEX:
                cursor.execute(statement)
            if not complete:
                cursor.execute("INSERT INTO batches_search(batches_search) VALUES ('rebuild')")


def drop_search_index(apps: Any, schema_editor: Any) -> None:
    """For a migration that changes the searched column: SQLite refuses to drop a column its
    triggers read, and the trigram table would keep the old text. ensure_search_index builds
    them anew after the migration."""
    if schema_editor.connection.vendor == "sqlite":
        for trigger in ("insert", "delete", "update"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS batches_search_{trigger}")
        schema_editor.execute("DROP TABLE IF EXISTS batches_search")


def _sqlite_search_objects(connection: BaseDatabaseWrapper) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 'batches_search' "
            "OR (type = 'trigger' AND name LIKE 'batches_search_%')"
        )
        return int(cursor.fetchone()[0])


def matching(batches: QuerySet[ProductionBatch], term: str) -> QuerySet[ProductionBatch]:
    """The batches whose search text contains `term`, whatever its accents and case. The
    database folds the term as it folded the text, with the same function."""
    connection = connections[batches.db]
    if connection.vendor == "sqlite" and len(term) >= 3 and _plain(term):
        ids = _sqlite_trigram_matches(connection, term)
        if len(ids) < RARE_TERM_LIMIT:
            return batches.filter(pk__in=ids)
    return batches.filter(search_text__contains=Folded(Value(term)))


def _plain(term: str) -> bool:
    """Whether the trigram index answers the term: FTS5 misses matches of a GLOB pattern with
    a one-character set (how a wildcard is escaped) or a control character, so such terms are
    looked for without it."""
    return term.isprintable() and not set(term) & set("*?[")


def _sqlite_trigram_matches(connection: BaseDatabaseWrapper, term: str) -> list[int]:
    # GLOB, because the trigram index serves it (_plain: the term has no wildcards).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rowid FROM batches_search "
            f"WHERE search_text GLOB '*' || {SQLITE_FUNCTION}(%s) || '*' LIMIT %s",
            [term, RARE_TERM_LIMIT],
        )
        return [row[0] for row in cursor.fetchall()]
