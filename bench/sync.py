"""The sync worker's throughput and memory, and the pull's speed, against the emulator.

    python bench/sync.py [--batches 1000] [--latency-ms 50] [--concurrency 4]
                         [--loop-batches 250] [--rss-batches 100000] [--pull-batches 10000]
                         [--paced-batches 10000] [--rate 50] [--workers 3]
                         [--database-url URL]

The emulator runs in a process of its own, as Isometric would. Prints:
- push throughput / (concurrency / latency), target >= 0.9: the worker keeps every slot busy;
- that throughput / a one-at-a-time loop's, target >= 0.9 x concurrency;
- the worker process's peak RSS while it pushes --rss-batches (latency 0), target flat (the last
  sample within 10% of the one after the first tenth) and under 150 MB;
- the time to pull --pull-batches remote batches / (pages x latency), target <= 1.15.
- --workers worker processes pushing a backlog of --paced-batches against the emulator limited
  to --rate requests a second, the account's rate limit set to the same: the requests a second
  Isometric answered while they push (from the first push's start to the last one's end; with
  the processes' start-up and exit too, which a short backlog feels, in brackets), target
  >= 0.9 x rate; the share answered 429, target <= 5 %; and each batch created exactly once.
  Then the same with no limit set on the account (a fifth of the backlog), where only the 429s
  pace the workers: its figures are printed, with no target.

The database is the bench's own (a SQLite file under bench/.data, made afresh each run; with
--database-url, PostgreSQL, whose batch tables are emptied first).
"""

import argparse
import math
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RSS_LIMIT_MB = 150

from bench.emulator_process import FACILITY_ID, FEEDSTOCK_TYPE_ID, EmulatorProcess  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--loop-batches", type=int, default=250)
    parser.add_argument("--rss-batches", type=int, default=100_000)
    parser.add_argument("--pull-batches", type=int, default=10_000)
    parser.add_argument("--paced-batches", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--database-url", default="")
    return parser.parse_args()


def configure(args: argparse.Namespace) -> None:
    from cryptography.fernet import Fernet

    data = ROOT / "bench" / ".data"
    data.mkdir(exist_ok=True)
    if not args.database_url:
        for stale in data.glob("sync.sqlite3*"):
            stale.unlink()
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{data / 'sync.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["DEBUG"] = "0"
    os.environ["LOG_LEVEL"] = "WARNING"  # a line per push would bury the figures
    os.environ["ENCRYPTION_KEYS"] = Fernet.generate_key().decode()  # the worker process's too
    import django

    django.setup()
    from django.core.management import call_command

    from batches.models import ProductionBatch

    call_command("migrate", verbosity=0)
    ProductionBatch.objects.all().delete()


def make_account(emulator: EmulatorProcess, name: str = "Bench"):  # type: ignore[no-untyped-def]
    """The account `name` (made if it is new) on the emulator, with its facility and feedstock
    type."""
    from batches.models import Facility, FeedstockType
    from portal.models import Environment, IsometricAccount

    account = IsometricAccount.objects.filter(name=name).first() or IsometricAccount(
        name=name, environment=Environment.CUSTOM
    )
    account.base_url = emulator.base_url
    account.set_credentials(
        client_secret=emulator.client_secret, access_token=emulator.access_token
    )
    account.save()
    Facility.objects.get_or_create(
        account=account, isometric_id=FACILITY_ID, defaults={"name": "Kiln"}
    )
    FeedstockType.objects.get_or_create(
        account=account, isometric_id=FEEDSTOCK_TYPE_ID, defaults={"name": "Wood"}
    )
    return account


def make_pending(account, count: int) -> None:  # type: ignore[no-untyped-def]
    from batches.models import Facility, FeedstockType, ProductionBatch
    from tests.factories import make_pending_batches

    ProductionBatch.objects.all().delete()
    facility = Facility.objects.get(account=account, isometric_id=FACILITY_ID)
    feedstock_type = FeedstockType.objects.get(account=account, isometric_id=FEEDSTOCK_TYPE_ID)
    make_pending_batches(account, facility, feedstock_type, count)


def timed_push(  # type: ignore[no-untyped-def]
    emulator: EmulatorProcess, account, count: int, concurrency: int, latency_ms: float
) -> float:
    """Batches a second that a worker pushes, from `count` pending."""
    from batches.models import ProductionBatch, SyncStatus
    from batches.worker import Worker

    emulator.control("reset", {})
    emulator.control("config", {"latency_ms": latency_ms})
    make_pending(account, count)
    started = time.perf_counter()
    Worker(concurrency, once=True).run()
    elapsed = time.perf_counter() - started
    synced = ProductionBatch.objects.filter(sync_status=SyncStatus.SYNCED).count()
    assert synced == count, f"only {synced} of {count} synced"
    return count / elapsed


def worker_rss(emulator: EmulatorProcess, account, count: int) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    """The worker process's RSS (MB) after a tenth of `count` pushes and at the end, and its
    peak."""
    from batches.models import ProductionBatch, SyncStatus

    emulator.control("reset", {})  # latency 0: as many pushes as the worker can make
    make_pending(account, count)
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "sync_worker", "--once"],
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    early = last = peak = 0.0
    while worker.poll() is None:
        time.sleep(1)
        status = _proc_status(worker.pid)
        if not status:
            break
        last, peak = status["VmRSS"], status["VmHWM"]
        pending = ProductionBatch.objects.exclude(sync_status=SyncStatus.SYNCED).count()
        if not early and pending <= count * 0.9:
            early = last
    worker.wait()
    synced = ProductionBatch.objects.filter(sync_status=SyncStatus.SYNCED).count()
    assert worker.returncode == 0, f"the worker exited with {worker.returncode}"
    assert synced == count, f"only {synced} of {count} synced"
    return early, last, peak


def _proc_status(pid: int) -> dict[str, float]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return {}
    found = {}
    for line in lines:
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) / 1024
    return found if len(found) == 2 else {}


def timed_pull(  # type: ignore[no-untyped-def]
    emulator: EmulatorProcess, account, count: int, latency_ms: float
) -> tuple[float, int]:
    from batches import sync
    from batches.models import ProductionBatch

    ProductionBatch.objects.all().delete()
    emulator.control("reset", {})
    emulator.control("seed", {"count": count})
    emulator.control("config", {"latency_ms": latency_ms})
    started = time.perf_counter()
    result = sync.pull(account)
    elapsed = time.perf_counter() - started
    assert result.new == count, result
    return elapsed, math.ceil(count / 50)


def paced_push(  # type: ignore[no-untyped-def]
    emulator: EmulatorProcess, account, count: int, rate: float, workers: int, limit: bool
) -> tuple[float, float, float, tuple[int, int, int]]:
    """`workers` worker processes push `count` pending batches against the emulator answering
    429 above `rate` requests a second, with the account's rate limit set to `rate` (`limit`)
    or none: the requests a second answered, over the whole run and from the first push's
    start to the last one's end (without the processes' start-up and exit); the share answered
    429; and how many batches were created once, more than once, and not at all (still
    waiting to retry a 429 when the `--once` workers found nothing more due and stopped)."""
    from batches.models import SyncAttempt
    from portal.models import IsometricAccount, RequestBudget

    emulator.control("reset", {})
    emulator.control("config", {"latency_ms": 20, "rate_limit_rps": rate})
    RequestBudget.objects.filter(account=account).delete()
    IsometricAccount.objects.filter(pk=account.pk).update(
        request_rate_limit=rate if limit else None
    )
    make_pending(account, count)
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, "manage.py", "sync_worker", "--once"],
            cwd=ROOT,
            env={**os.environ, "LOG_LEVEL": "WARNING"},
        )
        for _ in range(workers)
    ]
    for process in processes:
        process.wait()
    elapsed = time.perf_counter() - started
    stats = emulator.control("stats")
    requests: dict[str, dict[str, int]] = stats["requests"]  # type: ignore[assignment]
    created: dict[str, int] = stats["created_by_supplier_reference_id"]  # type: ignore[assignment]
    answers = [(outcome, n) for counts in requests.values() for outcome, n in counts.items()]
    throttled = sum(n for outcome, n in answers if outcome == "429")
    answered = sum(n for outcome, n in answers if outcome != "429")
    once = sum(n == 1 for n in created.values())
    creations = (once, len(created) - once, count - len(created))
    attempts = SyncAttempt.objects.values_list("started_at", "duration_ms")
    first = min(started_at for started_at, _ in attempts)
    last = max(started_at + timedelta(milliseconds=ms) for started_at, ms in attempts)
    pushing = (last - first).total_seconds()
    return answered / elapsed, answered / pushing, throttled / (throttled + answered), creations


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def main() -> int:
    args = parse_args()
    configure(args)
    emulator = EmulatorProcess()
    account = None
    try:
        account = make_account(emulator)
        db = os.environ["DATABASE_URL"].split(":", 1)[0]
        latency = args.latency_ms / 1000
        print(f"database {db}, emulator latency {args.latency_ms:g} ms")

        rate = timed_push(emulator, account, args.batches, args.concurrency, args.latency_ms)
        ideal = args.concurrency / latency
        efficiency = rate / ideal
        print(
            f"push {args.batches} with concurrency {args.concurrency}: {rate:.1f} batches/s; "
            f"/ (concurrency / latency = {ideal:.0f}/s) = {efficiency:.3f} "
            f"{verdict(efficiency >= 0.9)} (target >= 0.9)"
        )
        loop_rate = timed_push(emulator, account, args.loop_batches, 1, args.latency_ms)
        speedup = rate / loop_rate
        target = 0.9 * args.concurrency
        print(
            f"one at a time ({args.loop_batches}): {loop_rate:.1f} batches/s; speed-up "
            f"{speedup:.2f}x {verdict(speedup >= target)} (target >= {target:.1f}x)"
        )

        early, last, peak = worker_rss(emulator, account, args.rss_batches)
        flat = last <= early * 1.1
        print(
            f"worker pushing {args.rss_batches}: RSS {early:.1f} MB after a tenth, {last:.1f} MB "
            f"at the end, peak {peak:.1f} MB {verdict(flat and peak < RSS_LIMIT_MB)} "
            f"(target flat, < {RSS_LIMIT_MB} MB)"
        )

        elapsed, pages = timed_pull(emulator, account, args.pull_batches, args.latency_ms)
        ratio = elapsed / (pages * latency)
        print(
            f"pull {args.pull_batches} ({pages} pages): {elapsed:.2f} s; / (pages x latency) "
            f"= {ratio:.3f} {verdict(ratio <= 1.15)} (target <= 1.15)"
        )

        for limit, count in ((True, args.paced_batches), (False, args.paced_batches // 5)):
            overall, sustained, throttled, (once, again, unsent) = paced_push(
                emulator, account, count, args.rate, args.workers, limit
            )
            share = sustained / args.rate
            figures = (
                f"{args.workers} workers, {count} batches, Isometric limited to {args.rate:g}/s, "
                f"{'the account limited to the same' if limit else 'no limit on the account'}: "
                f"{sustained:.1f} requests/s answered while pushing = {share:.3f} x rate "
                f"({overall / args.rate:.3f} x rate with the processes' start-up and exit), "
                f"{throttled:.1%} answered 429; created once {once}, more than once {again}, "
                f"not yet {unsent}"
            )
            if limit:
                passed = share >= 0.9 and throttled <= 0.05 and once == count
                figures += f" {verdict(passed)} (target >= 0.9 x rate, <= 5 % 429, once)"
            print(figures)
    finally:
        emulator.stop()
        if account:  # on a kept PostgreSQL database, the next run starts clean
            account.batches.all().delete()
            account.delete()
    return 0


if __name__ == "__main__":
    sys.exit(main())
