"""The portal's state for Prometheus, read from the database when scraped, and the sync
attempts each worker counts (portal/metrics.py serves them)."""

from collections.abc import Iterator

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from batches.models import ProductionBatch
from portal.models import IsometricAccount

SYNC_ATTEMPTS = Counter(
    "batch_portal_sync_attempts", "Attempts to push a batch to Isometric, by outcome.", ["outcome"]
)


class PortalState(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The metrics without values: registering asks for them, before any database is."""
        yield _batches()
        yield _oldest_waiting()
        yield _last_pull_age()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()
        names = dict(IsometricAccount.objects.values_list("pk", "name"))

        batches = _batches()
        counted = (
            ProductionBatch.objects.order_by()
            .values_list("account_id", "sync_status")
            .annotate(count=Count("pk"))
        )
        for account_id, status, count in counted:
            batches.add_metric([names.get(account_id, str(account_id)), status], count)
        yield batches

        waiting = _oldest_waiting()
        oldest = (
            ProductionBatch.objects.filter(next_attempt_at__isnull=False)
            .order_by()
            .values_list("account_id")
            .annotate(oldest=Min("created_at"))
        )
        for account_id, created_at in oldest:
            age = (now - created_at).total_seconds()
            waiting.add_metric([names.get(account_id, str(account_id))], age)
        yield waiting

        pulls = _last_pull_age()
        for name, pulled_at in IsometricAccount.objects.values_list("name", "last_pulled_at"):
            if pulled_at is not None:
                pulls.add_metric([name], (now - pulled_at).total_seconds())
        yield pulls


def _batches() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "batch_portal_batches", "Batches by account and sync status.", labels=["account", "status"]
    )


def _oldest_waiting() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "batch_portal_oldest_waiting_seconds",
        "Age of the oldest batch not yet settled with Isometric (pending or syncing).",
        labels=["account"],
    )


def _last_pull_age() -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "batch_portal_last_pull_age_seconds",
        "Seconds since each account's batches were last pulled from Isometric.",
        labels=["account"],
    )
