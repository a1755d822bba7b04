"""`manage.py serve` (what `make run` runs): web server, worker and, for a newcomer, an emulator
with an account for it; stopped together."""

import signal
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from batches.models import Facility, ProductionBatch
from portal.models import ConnectionStatus, IsometricAccount
from tests.factories import make_account
from tests.processes import run_manage, start_manage

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                assert response.status == 200
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_a_newcomer_gets_the_emulator_an_account_for_it_and_its_batches(tmp_path: Path) -> None:
    web, emulator = free_port(), free_port()
    serve = start_manage(
        "serve",
        f"127.0.0.1:{web}",
        EMULATOR_PORT=emulator,
        EMULATOR_STATE=tmp_path / "emulator.json",
        DEBUG=1,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{web}/healthz")
        deadline = time.monotonic() + 20
        while ProductionBatch.objects.count() < 40 and time.monotonic() < deadline:
            time.sleep(0.2)  # the worker's first pull
    finally:
        serve.send_signal(signal.SIGTERM)
        output, _ = serve.communicate(timeout=30)

    account = IsometricAccount.objects.get()
    assert account.base_url == f"http://127.0.0.1:{emulator}/mrv/v0"
    assert account.connection_status == ConnectionStatus.OK
    assert Facility.objects.exists()
    assert ProductionBatch.objects.filter(account=account).count() == 40
    assert f"Isometric emulator on http://127.0.0.1:{emulator}/mrv/v0" in output
    assert "sync worker: stopped" in output
    assert (tmp_path / "emulator.json").exists()  # the token lasts across restarts
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{web}/healthz", timeout=1)


def test_with_an_account_of_its_own_the_portal_runs_without_the_emulator() -> None:
    make_account("Production")
    web = free_port()
    serve = start_manage("serve", f"127.0.0.1:{web}", DEBUG=1)
    try:
        wait_until_up(f"http://127.0.0.1:{web}/healthz")
    finally:
        serve.send_signal(signal.SIGTERM)
        output, _ = serve.communicate(timeout=30)

    assert "Isometric emulator" not in output
    assert IsometricAccount.objects.get().name == "Production"


def test_a_port_in_use_stops_everything_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, output = run_manage(
            "serve",
            f"127.0.0.1:{port}",
            timeout=60,
            EMULATOR_PORT=free_port(),
            EMULATOR_STATE=tmp_path / "emulator.json",
            DEBUG=1,
        )

    assert code != 0
    assert "The portal stopped: see the messages above." in output
    assert "sync worker: stopped" in output
