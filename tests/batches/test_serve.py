"""`manage.py serve` (what `make run` runs): web server, worker and, for a newcomer, an emulator
with an account for it; stopped together."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import requests
from django.core.management import CommandError

from batches.management.commands.serve import _local_address
from batches.models import Facility, ProductionBatch
from portal.models import ConnectionStatus, IsometricAccount
from tests.factories import make_account
from tests.processes import ROOT, free_port, run_manage, start_manage

pytestmark = pytest.mark.django_db(transaction=True)


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
    assert "Batch Portal is running" not in output


def test_make_run_serves_at_host_and_port_and_prints_the_first_login_last(tmp_path: Path) -> None:
    """The README's first command, as a newcomer runs it (less the install, done already)."""
    port = free_port()
    make = subprocess.Popen(
        # The test's own Python, installed already (-o setup).
        [
            "make",
            "-o",
            "setup",
            "run",
            f"PORT={port}",
            "HOST=localhost",
            f"BIN={Path(sys.executable).parent}",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
            "EMULATOR_PORT": str(free_port()),
            "EMULATOR_STATE": str(tmp_path / "emulator.json"),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        process_group=0,
    )
    # Read as it is printed, up to the welcome's last line (or the end, if it never comes).
    give_up = threading.Timer(120, os.killpg, (make.pid, signal.SIGTERM))
    give_up.start()
    assert make.stdout is not None
    printed = ""
    for line in make.stdout:
        printed += line
        if line.startswith("╰"):
            break
    give_up.cancel()
    try:
        # Last: after the web server's messages, so it is what the terminal shows.
        server = printed.index(f"development server at http://localhost:{port}/")
        box = printed[printed.index("╭", server) :]
        session = requests.Session()
        login = session.get(f"http://localhost:{port}/login/", timeout=10)
        [token] = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
        [password] = re.findall(r"^│ +password +(\S+) +│$", box, re.MULTILINE)
        home = session.post(
            f"http://localhost:{port}/login/",
            {"username": "admin", "password": password, "csrfmiddlewaretoken": token},
            allow_redirects=False,
            timeout=10,
        )
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        make.communicate(timeout=60)

    assert f"Batch Portal is running: open http://localhost:{port}/" in box
    assert "manage.py changepassword admin" in box
    assert home.status_code == 302 and home.headers["Location"] == "/", home.text


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:8000", ("127.0.0.1", 8000)),
        ("localhost:8080", ("localhost", 8080)),
        ("0.0.0.0:8080", ("127.0.0.1", 8080)),
        ("[::1]:9000", ("::1", 9000)),
        ("8000", ("127.0.0.1", 8000)),
    ],
)
def test_the_welcome_names_where_this_machine_reaches_the_portal(
    address: str, expected: tuple[str, int]
) -> None:
    assert _local_address(address) == expected


def test_an_address_without_a_port_is_refused_clearly() -> None:
    with pytest.raises(CommandError, match="not an address and port"):
        _local_address("localhost")
