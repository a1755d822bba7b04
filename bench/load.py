"""Operators and staff on the admin at once, on the portal as production runs it.

    python bench/load.py [--rows 1000000] [--users 50] [--duration 120]
                         [--database-url postgres://postgres@127.0.0.1:5432/bench_load]

Builds --rows batches in 10 accounts, once (PostgreSQL keeps them between runs; what operators
recorded in an earlier run is deleted first). Then serves the portal as the image does:
gunicorn with gunicorn.conf.py, DEBUG off, behind a TLS proxy (X-Forwarded-Proto from a trusted
address), the sync worker running and the emulator as Isometric answering after 100 ms. Locust
(bench/load_users.py) runs --users operators, each signed in to one of the accounts, going
through the list, its next page, a batch, a search, a status filter, recording a batch, "In
Isometric" and the dashboard in turn (each from a point of its own); and as many staff users
(no right to credentials, so no second factor) going through the admin's batch changelist the
same way (first page, next page, search, status filter) over the same accounts' rows. Every user
signs in through the login form first; the --duration seconds measured start once all have.

What is measured, and why. Each user sends its next request as soon as the last is answered,
and all wait in gunicorn's one queue: the requests a second and times the users see (the first
table, Locust's) are mostly that queue's, so the two kinds of users get nearly the same number
of requests a second whatever each page costs. What a page costs the portal is its time inside
the process, which the portal logs for each request (the JSON log line's `duration_ms`): the
second table gives each view's mean, p50 and p95 over the same seconds, and the requests a
second one gunicorn process serves of it (1 / mean). The targets:
- no failed request (Locust's, signing in included);
- the list (`batches:list`: first page, next page, search, filter) serves at least 5x the
  requests a second of the admin changelist, at a p95 no higher than the changelist's (both
  from the second table);
- every batch the operators recorded reaches synced, created exactly once in Isometric (the
  emulator's count per reference), once the worker has caught up after the load.
"""

import argparse
import json
import math
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from runpy import run_path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.emulator_process import FACILITY_ID, FEEDSTOCK_TYPE_ID, EmulatorProcess  # noqa: E402
from bench.sync import verdict  # noqa: E402

ACCOUNTS = 10
LATENCY_MS = 100
PASSWORD = "load-bench-password"
CATCH_UP_SECONDS = 120  # for the worker to sync what was recorded, once the load stops
LIST_VIEW = "batches:list"
CHANGELIST_VIEW = "admin:batches_productionbatch_changelist"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=50, help="operators, and as many staff")
    parser.add_argument("--duration", type=float, default=120, help="seconds measured")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_load")
    return parser.parse_args()


def create_database(url: str) -> None:
    """The database at `url`, unless the server has it already."""
    import psycopg
    from psycopg import sql

    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        if not connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone():
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def configure(args: argparse.Namespace) -> None:
    """The production settings, for this process and the ones it starts."""
    from cryptography.fernet import Fernet

    create_database(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    os.environ["DEBUG"] = "0"
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(50)
    # The emulator's credentials are new each run, so the accounts' are stored afresh too.
    os.environ["ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)  # DEBUG off serves these


def prepare(emulator: EmulatorProcess, args: argparse.Namespace) -> dict[str, Any]:
    """The accounts on the emulator, their batches and users; Locust's configuration."""
    from datetime import timedelta

    from axes.models import AccessAttempt
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from batches.models import Facility, FeedstockType, ProductionBatch, SyncStatus
    from batches.roles import OPERATORS
    from bench.list_pages import build
    from bench.sync import make_account

    accounts = [make_account(emulator, f"Bench {n}") for n in range(ACCOUNTS)]
    ProductionBatch.objects.filter(created_by__isnull=False).delete()  # an earlier run's
    build(args.rows, accounts)
    # Isometric (the emulator) holds none of the built batches: the worker is not to pull
    # (which would mark them deleted) nor push them (their facilities are not Isometric's).
    far = timezone.now() + timedelta(days=3650)
    for account in accounts:
        account.pull_due_at = far
        account.save()
    ProductionBatch.objects.filter(sync_status=SyncStatus.PENDING).update(next_attempt_at=far)

    password = make_password(PASSWORD)  # once for all: a hash takes as long as a sign-in
    operators_group = Group.objects.get(name=OPERATORS)
    operators, staff = {}, []
    for n in range(args.users):
        account = accounts[n % ACCOUNTS]
        for name, is_staff in ((f"load-operator-{n}", False), (f"load-staff-{n}", True)):
            user, made = User.objects.get_or_create(
                username=name, defaults={"password": password, "is_staff": is_staff}
            )
            if made:
                user.groups.add(operators_group)
                account.members.add(user)
        operators[f"load-operator-{n}"] = {
            "facility": Facility.objects.get(account=account, isometric_id=FACILITY_ID).pk,
            "feedstock_type": FeedstockType.objects.get(
                account=account, isometric_id=FEEDSTOCK_TYPE_ID
            ).pk,
        }
        staff.append(f"load-staff-{n}")
    AccessAttempt.objects.filter(username__startswith="load-").delete()  # an earlier run's
    return {
        "password": PASSWORD,
        "operators": operators,
        "staff": staff,
        "rows": args.rows,
        "duration": args.duration,
    }


def serve(logs: Path) -> tuple[subprocess.Popen[str], subprocess.Popen[bytes], str]:
    """gunicorn as the image runs it (its log to logs/web.log), and the sync worker."""
    from tests.processes import free_port, get_when_up, start_gunicorn

    port = free_port()
    web = start_gunicorn(
        port,
        output=(logs / "web.log").open("a"),
        DJANGO_SETTINGS_MODULE="portal.settings",
        DEBUG="0",
        SECRET_KEY=os.environ["SECRET_KEY"],
        ENCRYPTION_KEYS=os.environ["ENCRYPTION_KEYS"],
        ALLOWED_HOSTS="127.0.0.1",
        TRUSTED_PROXIES="127.0.0.1",
        LOG_FORMAT="json",
        # The image's number of processes (it sets none: gunicorn.conf.py's default).
        WEB_CONCURRENCY=str(run_path(str(ROOT / "gunicorn.conf.py"))["workers"]),
    )
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "sync_worker"],
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING", "EMAIL_URL": "consolemail://"},
        stdout=(logs / "worker.log").open("a"),
        stderr=subprocess.STDOUT,
    )
    assert get_when_up(f"http://127.0.0.1:{port}/healthz").status_code == 200
    return web, worker, f"http://127.0.0.1:{port}"


def run_users(config: dict[str, Any], logs: Path) -> tuple[dict[str, Any], tuple[int, int]]:
    """Locust's figures, and where the measured seconds start and end in the web log."""
    (logs / "locust.json").write_text(json.dumps(config))
    web_log = logs / "web.log"
    users = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "load_users.py"),
            str(logs / "locust.json"),
            str(logs / "results.json"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=(logs / "locust.log").open("a"),
        text=True,
    )
    assert users.stdout is not None
    marks = {line.strip(): web_log.stat().st_size for line in users.stdout}
    assert users.wait() == 0, f"Locust failed: see {logs / 'locust.log'}"
    return json.loads((logs / "results.json").read_text()), (marks["measuring"], marks["measured"])


def served(web_log: Path, window: tuple[int, int]) -> dict[tuple[str, str], list[float]]:
    """The milliseconds of each request the portal logged in the window, by view and method."""
    times = defaultdict(list)
    with web_log.open("rb") as log:
        log.seek(window[0])
        for line in log.read(window[1] - window[0]).splitlines():
            if line.startswith(b"{") and b'"duration_ms"' in line:
                entry = json.loads(line)
                times[entry["view"], entry["method"]].append(entry["duration_ms"])
    return times


def caught_up(emulator: EmulatorProcess) -> tuple[int, int, int, int]:
    """Once the worker has settled them (or the time is up): the batches the operators
    recorded, how many are synced, how many Isometric created exactly once, and how many other
    references it created."""
    from batches.models import ProductionBatch, SyncStatus

    recorded = ProductionBatch.objects.filter(created_by__isnull=False)
    deadline = time.monotonic() + CATCH_UP_SECONDS
    unsettled = (SyncStatus.PENDING, SyncStatus.SYNCING)
    while recorded.filter(sync_status__in=unsettled).exists() and time.monotonic() < deadline:
        time.sleep(1)
    statuses = dict(recorded.values_list("supplier_reference_id", "sync_status"))
    created: dict[str, int] = emulator.control("stats")["created_by_supplier_reference_id"]  # type: ignore[assignment]
    synced = sum(status == SyncStatus.SYNCED for status in statuses.values())
    once = sum(created.get(reference) == 1 for reference in statuses)
    return len(statuses), synced, once, len(set(created) - set(statuses))


def percentile(times: list[float], share: float) -> float:
    """The nearest-rank percentile."""
    ordered = sorted(times)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def report(
    results: dict[str, Any],
    times: dict[tuple[str, str], list[float]],
    sync: tuple[int, int, int, int],
) -> bool:
    seconds = results["seconds"]
    print(f"\nAs the users saw it, over {seconds:.0f} s (Locust; waiting in gunicorn's queue)")
    print(f"{'page':<20}{'requests':>9}{'failures':>9}{'req/s':>8}{'p50 ms':>8}{'p95 ms':>8}")
    pages = [page for page in results["pages"] if page["requests"]]  # not signing in
    for page in sorted(pages, key=lambda page: (page["name"].startswith("admin"), page["name"])):
        print(
            f"{page['name']:<20}{page['requests']:>9}{page['failures']:>9}"
            f"{page['requests'] / seconds:>8.1f}{page['p50']:>8.0f}{page['p95']:>8.0f}"
        )
    for error in results["errors"]:
        print(f"  {error['occurrences']} x {error['method']} {error['name']}: {error['error']}")
    for exception in results["exceptions"]:
        print(f"  raised: {exception}")

    print("\nInside the portal (its log), same seconds")
    print(f"{'view':<44}{'requests':>9}{'mean ms':>9}{'p50 ms':>8}{'p95 ms':>8}{'req/s':>7}")
    for (view, method), durations in sorted(times.items()):
        mean = statistics.fmean(durations)
        print(
            f"{view + ' ' + method:<44}{len(durations):>9}{mean:>9.1f}"
            f"{percentile(durations, 0.5):>8.1f}{percentile(durations, 0.95):>8.1f}"
            f"{1000 / mean:>7.1f}"
        )

    sign_in_failures = sum(page["failures"] for page in results["sign_in"]["pages"])
    failures = sign_in_failures + sum(page["failures"] for page in results["pages"])
    # A view that served nothing (every request failed) fails its targets.
    listed, changelist = times[LIST_VIEW, "GET"] or [math.inf], times[CHANGELIST_VIEW, "GET"]
    ratio = statistics.fmean(changelist or [0]) / statistics.fmean(listed)
    list_p95, admin_p95 = percentile(listed, 0.95), percentile(changelist or [0], 0.95)
    recorded, synced, once, others = sync
    checks = [
        (
            f"failed requests: {failures} (signing in: {sign_in_failures}, "
            f"{results['sign_in']['seconds']:.0f} s for all to sign in); "
            f"steps that raised: {len(results['exceptions'])}",
            failures == 0 and not results["exceptions"],
            "target 0, 0",
        ),
        (
            f"requests a second a process serves, list / admin changelist: {ratio:.1f}x",
            ratio >= 5,
            "target >= 5",
        ),
        (
            f"list p95 {list_p95:.1f} ms, admin changelist p95 {admin_p95:.1f} ms",
            list_p95 <= admin_p95,
            "target list <= admin",
        ),
        (
            f"batches recorded {recorded}: synced {synced}, created exactly once in Isometric "
            f"{once}, other references created there {others}",
            recorded == synced == once > 0 and others == 0,
            "target all, none",
        ),
    ]
    print()
    for text, passed, target in checks:
        print(f"{text}  {verdict(passed)} ({target})")
    return all(passed for _, passed, _ in checks)


def stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> int:
    args = parse_args()
    configure(args)
    logs = Path(tempfile.mkdtemp(prefix="bench-load-"))
    emulator = EmulatorProcess()
    processes: list[subprocess.Popen[Any]] = []
    try:
        emulator.control("config", {"latency_ms": LATENCY_MS})
        config = prepare(emulator, args)
        web, worker, config["host"] = serve(logs)
        processes += [web, worker]
        print(
            f"{args.rows} batches in {ACCOUNTS} accounts, {args.users} operators and "
            f"{args.users} staff on the admin, {args.duration:g} s measured; logs in {logs}",
            flush=True,
        )
        results, window = run_users(config, logs)
        sync = caught_up(emulator)
        passed = report(results, served(logs / "web.log", window), sync)
    finally:
        for process in reversed(processes):
            stop(process)
        emulator.stop()
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
