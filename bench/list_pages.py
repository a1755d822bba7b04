"""Time the batch list and the home page (the dashboard) against the Django admin changelist
over the same rows.

    python bench/list_pages.py [--rows 100000] [--repeat 30] [--database-url URL]

Builds the rows once in a database of its own (a SQLite file under bench/.data by default, kept
between runs; with --database-url, PostgreSQL), then prints the median time of each page and the
ratios the targets speak of: the list and the dashboard each at least 5x faster than the admin
changelist, and a deep page no slower than 1.5x the first, in each of the list's orders (the admin
sorted the same way).
"""

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portal.models import IsometricAccount

ROOT = Path(__file__).resolve().parent.parent
WARM_UP = 5
RUN = 5
# Part of the SQLite file's name: a file built by an earlier build() holds other rows.
DATA_VERSION = 2
sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url", default="")
    return parser.parse_args()


def configure(args: argparse.Namespace) -> None:
    data = ROOT / "bench" / ".data"
    data.mkdir(exist_ok=True)
    default_url = f"sqlite:///{data / f'list_pages_v{DATA_VERSION}_{args.rows}.sqlite3'}"
    os.environ["DATABASE_URL"] = args.database_url or default_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    os.environ["DEBUG"] = "0"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def build(rows: int, accounts: "list[IsometricAccount]") -> None:
    """`rows` batches in all (those missing if the database holds some), taking `accounts` in
    turn, each account with 8 facilities and 6 feedstock types of its own."""
    from datetime import timedelta
    from decimal import Decimal

    from django.db import connection, transaction
    from django.utils import timezone

    from batches.history import Via, log_batch_changes
    from batches.models import Facility, FeedstockType, ProductionBatch, SyncStatus

    have = ProductionBatch.objects.count()
    if have >= rows:
        return
    facilities = [
        [
            Facility.objects.get_or_create(
                account=account, isometric_id=f"fcl_BENCH{n:015d}", defaults={"name": f"Kiln {n}"}
            )[0]
            for n in range(8)
        ]
        for account in accounts
    ]
    feedstocks = [
        [
            FeedstockType.objects.get_or_create(
                account=account,
                isometric_id=f"ftt_BENCH{n:015d}",
                defaults={"name": f"Feedstock {n}"},
            )[0]
            for n in range(6)
        ]
        for account in accounts
    ]
    # As in a working portal: nearly every batch synced, 1% still pending, rejected or failed.
    statuses = ([SyncStatus.PENDING] * 5 + [SyncStatus.FAILED] * 2 + [SyncStatus.REJECTED] * 3) + [
        SyncStatus.SYNCED
    ] * 990
    # One batch every five minutes, up to the build: the dashboard's year holds 105,120 of them
    # (all of them, up to that many).
    start = timezone.now() - timedelta(minutes=5 * rows)
    through = ProductionBatch.feedstock_types.through
    print(f"building {rows - have} batches ...", flush=True)
    chunk = 10_000
    for first in range(have, rows, chunk):
        with transaction.atomic():
            # Batch n is the account's m-th: each account's batches have every status and
            # facility in the same shares.
            numbered = [
                (n, n % len(accounts), n // len(accounts))
                for n in range(first, min(first + chunk, rows))
            ]
            batches = ProductionBatch.objects.bulk_create(
                [
                    ProductionBatch(
                        account=accounts[a],
                        facility=facilities[a][m % 8],
                        supplier_reference_id=f"KILN-{m % 8}-{n:08d}",
                        display_name=f"Kiln {m % 8} run {n}",
                        started_at=start + timedelta(minutes=5 * n),
                        ended_at=start + timedelta(minutes=5 * n + 240),
                        mass_magnitude=Decimal(n % 997) / 10 + 1,
                        mass_unit="tonne",
                        sync_status=statuses[m % len(statuses)],
                        next_attempt_at=start if m % 1000 < 5 else None,  # only pending ones
                        remote_id=f"ptb_{n:016d}" if m % 1000 >= 10 else None,
                    )
                    for n, a, m in numbered
                ]
            )
            through.objects.bulk_create(
                through(
                    productionbatch_id=batch.pk, feedstocktype_id=feedstocks[a][batch.pk % 6].pk
                )
                for batch, (_, a, _) in zip(batches, numbered, strict=True)
            )
            # Each batch's history: the worker's outcome (the dashboard lists the latest).
            log_batch_changes(
                [
                    (batch, {"sync_status": (SyncStatus.PENDING, batch.sync_status)})
                    for batch in batches
                ],
                Via.WORKER,
            )
    # A database in service has planner statistics (and, on PostgreSQL, a visibility map that
    # allows index-only scans); a freshly bulk-loaded one has neither yet.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    print("built", flush=True)


def medians_ms(client, urls: tuple[str, str], repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Median milliseconds of each URL over `repeat` requests.

    Each URL is requested in runs of RUN consecutive requests, the two URLs' runs alternating, so
    both meet the same machine, yet neither is timed while paying for the garbage and the cold
    caches the other page leaves behind (a list page timed right after each admin page, which
    builds 100 rows and counts them all twice, takes a quarter longer).
    """
    for url in urls:
        for _ in range(WARM_UP):
            client.get(url)
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(math.ceil(repeat / RUN)):
        for url, series in zip(urls, times, strict=True):
            for _ in range(RUN):
                began = time.perf_counter()
                response = client.get(url)
                series.append(time.perf_counter() - began)
                assert response.status_code == 200, (url, response.status_code)
    first, second = (statistics.median(series) * 1000 for series in times)
    return first, second


def main() -> None:
    args = parse_args()
    configure(args)

    from django.contrib.auth.models import User
    from django.test import Client

    from portal.models import IsometricAccount

    if not User.objects.filter(username="bench").exists():
        User.objects.create_superuser("bench", password="bench")
    account, _ = IsometricAccount.objects.get_or_create(
        name="Bench", defaults={"base_url": "http://127.0.0.1:9/mrv/v0", "environment": "custom"}
    )
    build(args.rows, [account])

    from batches.models import Facility, ProductionBatch
    from batches.selectors import Sort, in_chunks
    from tests.factories import log_in

    client = Client(headers={"host": "localhost"})
    # Not login(): login throttling needs the request a test client's login does not pass. A
    # superuser, so with the second factor given.
    log_in(client, User.objects.get(username="bench"))
    admin_deep_page = (args.rows * 9 // 10) // 100
    facility = Facility.objects.get(isometric_id="fcl_BENCH000000000000003")
    term = f"{args.rows // 2:08d}"[:-1]  # part of a reference: matches ten batches
    # The same, as an operator may type it: "KÍLN-3-0001000" finds "KILN-3-00010003".
    folded_term = f"KÍLN-{args.rows // 2 % 8}-{term}"
    changelist = "/admin/batches/productionbatch/"
    cases = [
        ("search", f"/batches/?q={term}", f"{changelist}?q={term}"),
        ("search, accents", f"/batches/?q={folded_term}", f"{changelist}?q={folded_term}"),
        (
            "filtered search",
            f"/batches/?q=run&facility={facility.pk}&sync_status=synced",
            f"{changelist}?q=run&facility__id__exact={facility.pk}&sync_status__exact=synced",
        ),
        ("dashboard", "/", "/admin/batches/productionbatch/"),
    ]
    # Each order's first page and a page 90% of the way down, against the admin sorted by the
    # same column (its `o`: the column's place in list_display).
    orders = [("-start", "-4"), ("mass", "5"), ("facility", "3"), ("status", "7")]
    facilities = Facility.objects.all()
    for sort, admin_order in orders:
        rows = in_chunks(ProductionBatch.objects.all(), 5000, Sort.of(sort, facilities))
        deep_row = next(row for n, row in enumerate(rows) if n == args.rows * 9 // 10)
        deep_cursor = Sort.of(sort, facilities).cursor_of(deep_row).encode()
        cases += [
            (f"{sort}, first", f"/batches/?sort={sort}", f"{changelist}?o={admin_order}"),
            (
                f"{sort}, deep",
                f"/batches/?sort={sort}&after={deep_cursor}",
                f"{changelist}?o={admin_order}&p={admin_deep_page}",
            ),
        ]
    db = os.environ["DATABASE_URL"].split(":", 1)[0]
    print(f"{args.rows} batches on {db}, median of {args.repeat} requests")
    print(f"{'page':<18}{'page ms':>10}{'admin ms':>10}{'admin/page':>12}")
    results = {}
    for name, ours, admin in cases:
        list_ms, admin_ms = medians_ms(client, (ours, admin), args.repeat)
        results[name] = list_ms
        ratio = admin_ms / list_ms
        verdict = "PASS" if ratio >= 5 else "FAIL"
        figures = f"{list_ms:>10.2f}{admin_ms:>10.2f}{ratio:>11.1f}x"
        print(f"{name:<18}{figures}  {verdict} (target >= 5)")
    for sort, _ in orders:
        deep_ratio = results[f"{sort}, deep"] / results[f"{sort}, first"]
        verdict = "PASS" if deep_ratio <= 1.5 else "FAIL"
        print(f"{sort}: deep page / first page: {deep_ratio:.2f}  {verdict} (target <= 1.5)")


if __name__ == "__main__":
    main()
