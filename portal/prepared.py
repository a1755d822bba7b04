"""Queries whose SQL the ORM writes once, for the few that every request makes.

Building an ORM query costs more than SQLite or PostgreSQL take to answer these small ones, and
they run before a view can start: on "In Isometric", before the page can ask Isometric.
"""

from collections.abc import Callable
from functools import cache

from django.db.models import Model, QuerySet


def prepared_query[M: Model](build: Callable[[], QuerySet[M]]) -> Callable[..., list[M]]:
    """The query `build` returns, run with other parameters: `build` filters with stand-in
    values, and the call gives the real ones in the same order. The ORM's SQL and its
    conversion of the columns are kept; only the building of the query is saved."""

    @cache
    def prepared() -> tuple[type[M], str]:
        queryset = build()
        sql, _stand_ins = queryset.query.sql_with_params()
        return queryset.model, sql

    def run(*params: object) -> list[M]:
        model, sql = prepared()
        return list(model._default_manager.raw(sql, params))

    return run
