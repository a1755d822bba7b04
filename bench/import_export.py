"""Bulk import against recording batches one form post at a time, and the memory of a large
import and export.

    python bench/import_export.py [--rows 10000] [--posts 10000] [--big-rows 100000]
                                  [--export-rows 1000000] [--database-url URL]

Prints, in one run on one database (a SQLite file under bench/.data made afresh, or the
PostgreSQL of --database-url, whose batch tables are emptied first):
- the time to import --rows batches from a CSV and from an XLSX file (the worker's check and
  import, the operator's two steps), against the time --posts form posts through the portal
  take per batch (each with the batch page it redirects to, as in a browser), times --rows:
  target at least 10x faster for each format;
- the growth of a process's memory (its peak RSS over its RSS before) while it imports
  --big-rows batches from a CSV, and while it exports --export-rows batches to CSV and to XLSX:
  target under 100 MB each. Each runs in a fresh process of its own.
"""

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPEED_TARGET = 10.0
MEMORY_LIMIT_MB = 100.0
FACILITY, FEEDSTOCK = "Kiln A", "Pine wood chips"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--big-rows", type=int, default=100_000)
    parser.add_argument("--export-rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--child", choices=["import", "export-csv", "export-xlsx"])
    return parser.parse_args()


def configure(database_url: str, fresh: bool) -> None:
    from cryptography.fernet import Fernet

    data = ROOT / "bench" / ".data"
    data.mkdir(exist_ok=True)
    if fresh and not database_url:
        for stale in data.glob("import_export.sqlite3*"):
            stale.unlink()
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{data / 'import_export.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["DEBUG"] = "0"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ.setdefault("ENCRYPTION_KEYS", Fernet.generate_key().decode())
    os.environ["BATCH_IMPORT_MAX_ROWS"] = "1000000"
    os.environ["BATCH_IMPORT_MAX_BYTES"] = str(500 * 1024 * 1024)
    import django

    django.setup()
    if fresh:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def setting_up() -> Any:
    """The bench's account, its facility and feedstock type, and an operator in it."""
    from batches.models import BatchImport, ProductionBatch
    from tests.factories import make_account, make_facility, make_feedstock_type, make_user

    BatchImport.objects.all().delete()
    ProductionBatch.objects.all().delete()
    account = make_account("Bench imports")
    make_facility(FACILITY, account=account)
    make_feedstock_type(FEEDSTOCK, account=account)
    user = make_user("importer", operator=True)
    account.members.add(user)
    return account, user


def rows(count: int, prefix: str) -> list[list[Any]]:
    from django.utils import timezone

    started = timezone.localtime().replace(tzinfo=None, second=0, microsecond=0)
    started -= timedelta(days=400)
    return [
        [
            f"{prefix}-{n:07d}",
            "",
            FACILITY,
            FEEDSTOCK,
            started + timedelta(minutes=n),
            started + timedelta(minutes=n, hours=6),
            f"{10 + n % 50}.5",
            "tonne",
            "",
        ]
        for n in range(count)
    ]


def csv_bytes(table: list[list[Any]]) -> bytes:
    from batches.spreadsheet import TEMPLATE_COLUMNS

    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(column.header for column in TEMPLATE_COLUMNS)
    for row in table:
        writer.writerow(
            [f"{value:%Y-%m-%d %H:%M}" if hasattr(value, "hour") else value for value in row]
        )
    return text.getvalue().encode()


def xlsx_bytes(table: list[list[Any]]) -> bytes:
    from openpyxl import Workbook

    from batches.spreadsheet import TEMPLATE_COLUMNS

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append([column.header for column in TEMPLATE_COLUMNS])
    for row in table:
        sheet.append(row)
    data = io.BytesIO()
    workbook.save(data)
    return data.getvalue()


def timed_import(account: Any, user: Any, content: bytes, name: str) -> tuple[float, int]:
    """Seconds for the worker to check the file and import it, and the batches it made."""
    from batches import imports
    from batches.models import BatchImport, ImportStatus

    started = time.perf_counter()
    batch_import = BatchImport.objects.create(
        account=account, created_by=user, file_name=name, content=content
    )
    imports.check(BatchImport.objects.get(pk=batch_import.pk))
    assert imports.start_import(batch_import)
    imports.import_rows(BatchImport.objects.get(pk=batch_import.pk))
    elapsed = time.perf_counter() - started
    done = BatchImport.objects.get(pk=batch_import.pk)
    assert done.status == ImportStatus.IMPORTED, done.message
    return elapsed, done.imported


def timed_posts(account: Any, user: Any, table: list[list[Any]]) -> float:
    """Seconds to record these batches one form post at a time, through the portal, as a
    browser does: the post, then the batch's page it is sent to (which shows, and so clears,
    the "saved" message; left unread, 10,000 of them made each request carry them all)."""
    from django.test import Client

    from batches.models import Facility, FeedstockType

    facility = Facility.objects.get(account=account, name=FACILITY)
    feedstock_type = FeedstockType.objects.get(account=account, name=FEEDSTOCK)
    client = Client(headers={"host": "localhost"})  # one of ALLOWED_HOSTS
    client.force_login(user)
    started = time.perf_counter()
    for row in table:
        response = client.post(
            f"/batches/new/?reference={row[0]}",
            {
                "supplier_reference_id": row[0],
                "display_name": "",
                "facility": facility.pk,
                "feedstock_types": [feedstock_type.pk],
                "started_at": f"{row[4]:%Y-%m-%dT%H:%M}",
                "ended_at": f"{row[5]:%Y-%m-%dT%H:%M}",
                "mass_magnitude": row[6],
                "mass_unit": "tonne",
                "mass_standard_deviation": "",
            },
            follow=True,
        )
        assert response.redirect_chain and response.status_code == 200, response.content[-2000:]
    return time.perf_counter() - started


def child(kind: str, count: int) -> None:
    """In a fresh process: the peak RSS growth of importing or exporting `count` batches."""
    configure(os.environ["DATABASE_URL"], fresh=False)
    from batches import exports
    from batches.models import ProductionBatch
    from batches.selectors import DEFAULT_SORT

    if kind == "import":
        from batches.models import BatchImport
        from portal.models import IsometricAccount

        account = IsometricAccount.objects.get(name="Bench imports")
        content = csv_bytes(rows(count, "BIG"))
        BatchImport.objects.all().delete()
        baseline = _rss_mb()
        timed_import(account, None, content, "big.csv")
        del content
    else:
        batches = ProductionBatch.objects.all()
        baseline = _rss_mb()
        response = exports.download(batches, kind.removeprefix("export-"), DEFAULT_SORT)
        for _ in response:  # as a WSGI server sends it
            pass
    print(json.dumps({"baseline": baseline, "peak": _peak_mb()}))


def _rss_mb() -> float:
    return _status("VmRSS")


def _peak_mb() -> float:
    return _status("VmHWM")


def _status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def growth(kind: str, count: int) -> float:
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--big-rows", str(count)],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    return float(figures["peak"] - figures["baseline"])


def main() -> int:
    args = parse_args()
    if args.child:
        child(args.child, args.big_rows)
        return 0
    configure(args.database_url, fresh=True)
    from batches.models import ProductionBatch

    account, user = setting_up()
    db = os.environ["DATABASE_URL"].split(":", 1)[0]
    print(f"database {db}")
    passed = True

    table = rows(args.rows, "IMP")
    seconds = {}
    for name, content in (("csv", csv_bytes(table)), ("xlsx", xlsx_bytes(table))):
        ProductionBatch.objects.all().delete()
        elapsed, made = timed_import(account, user, content, f"season.{name}")
        assert made == args.rows, made
        seconds[name] = elapsed
    ProductionBatch.objects.all().delete()
    posted = timed_posts(account, user, table[: args.posts])
    per_post = posted / args.posts
    print(f"{args.posts} form posts: {posted:.1f} s, {per_post * 1000:.2f} ms a batch")
    for name, elapsed in seconds.items():
        ratio = per_post * args.rows / elapsed
        passed &= ratio >= SPEED_TARGET
        print(
            f"import of {args.rows} from {name.upper()}: {elapsed:.1f} s, "
            f"{ratio:.1f}x faster than form posts {verdict(ratio >= SPEED_TARGET)} "
            f"(target >= {SPEED_TARGET:g}x)"
        )

    ProductionBatch.objects.all().delete()
    grown = growth("import", args.big_rows)
    passed &= grown < MEMORY_LIMIT_MB
    print(
        f"import of {args.big_rows} from CSV: memory grew {grown:.1f} MB "
        f"{verdict(grown < MEMORY_LIMIT_MB)} (target < {MEMORY_LIMIT_MB:g} MB)"
    )

    ProductionBatch.objects.all().delete()
    fill(account, args.export_rows)
    for kind in ("export-csv", "export-xlsx"):
        started = time.perf_counter()
        grown = growth(kind, args.export_rows)
        passed &= grown < MEMORY_LIMIT_MB
        print(
            f"export of {args.export_rows} to {kind.removeprefix('export-').upper()} "
            f"({time.perf_counter() - started:.0f} s): memory grew {grown:.1f} MB "
            f"{verdict(grown < MEMORY_LIMIT_MB)} (target < {MEMORY_LIMIT_MB:g} MB)"
        )
    return 0 if passed else 1


def fill(account: Any, count: int) -> None:
    """`count` batches of the account, written in bulk a chunk at a time (so this process does
    not hold them all)."""
    from itertools import batched

    from django.utils import timezone

    from batches.models import ProductionBatch

    facility, feedstock_type = account.facilities.get(), account.feedstock_types.get()
    through = ProductionBatch.feedstock_types.through
    started = timezone.now() - timedelta(days=1)
    for chunk in batched(range(count), 10_000):
        made = ProductionBatch.objects.bulk_create(
            ProductionBatch(
                account=account,
                facility=facility,
                supplier_reference_id=f"BULK-{n:07d}",
                display_name=f'=HYPERLINK("x") {n}' if n % 1000 == 0 else "",
                started_at=started - timedelta(minutes=n),
                ended_at=started - timedelta(minutes=n) + timedelta(hours=6),
                mass_magnitude=Decimal("10.5"),
                mass_unit="tonne",
                next_attempt_at=timezone.now(),
            )
            for n in chunk
        )
        through.objects.bulk_create(
            through(productionbatch_id=batch.pk, feedstocktype_id=feedstock_type.pk)
            for batch in made
        )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


if __name__ == "__main__":
    sys.exit(main())
