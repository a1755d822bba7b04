"""compose.yaml, run here: this machine has no container daemon, so its services' commands are
started as processes, with its environment, against PostgreSQL (the test database in place of
the `db` service, free ports in place of the containers' own). Migrations once, the demo
emulator and its account, the web process and two workers, their health checks, a batch
through to Isometric, and a graceful stop."""

import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.db import connection

from batches.models import Facility, FeedstockType, ProductionBatch, SyncStatus
from portal.models import IsometricAccount
from tests.factories import make_batch
from tests.processes import ROOT, database_url, free_port

pytestmark = pytest.mark.django_db(transaction=True)

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
# What an operator exports before `docker compose up`.
EXPORTED = {"SECRET_KEY": "compose-test-secret-key-" + "x" * 40}


def interpolate(value: str, exported: dict[str, str]) -> str:
    """Compose's ${NAME:-default} and ${NAME:?error}."""

    def one(match: re.Match[str]) -> str:
        name, operator, rest = match.group(1), match.group(2), match.group(3)
        if exported.get(name):
            return exported[name]
        if operator == ":?":
            raise AssertionError(f"compose.yaml needs {name}: {rest}")
        return rest

    return re.sub(r"\$\{(\w+)(:-|:\?)([^}]*)\}", one, value)


class Stack:
    """compose.yaml's services as processes on this machine. `hosts`: where an address of the
    containers' network is here (host:port, or a container's own port)."""

    def __init__(self, hosts: dict[str, str]) -> None:
        self.hosts = hosts
        self.exported = {**EXPORTED, "ENCRYPTION_KEYS": ",".join(settings.ENCRYPTION_KEYS)}
        self.processes: dict[str, tuple[str, dict[str, str], subprocess.Popen[str]]] = {}

    def here(self, text: str, ports: dict[str, str]) -> str:
        for there, here in {**self.hosts, **ports}.items():
            text = text.replace(there, here)
        return text

    def environment(self, service: str, ports: dict[str, str]) -> dict[str, str]:
        given = SERVICES[service].get("environment", {})
        return {
            # `python` and `gunicorn` are the image's: here, this environment's.
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            **{
                name: self.here(interpolate(str(value), self.exported), ports)
                for name, value in given.items()
            },
            "DATABASE_URL": database_url(),  # the `db` service
            **({"PORT": ports["8000"]} if "8000" in ports else {}),
        }

    def _exec(self, service: str, command: list[str], ports: dict[str, str]) -> Any:
        return {
            "args": [self.here(part, ports) for part in command],
            "cwd": ROOT,
            "env": self.environment(service, ports),
            "text": True,
        }

    def run(self, service: str) -> str:
        done = subprocess.run(
            **self._exec(service, SERVICES[service]["command"], {}),
            capture_output=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return str(done.stdout + done.stderr)

    def start(self, name: str, service: str, **ports: str) -> None:
        process = subprocess.Popen(
            **self._exec(service, SERVICES[service]["command"], ports),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.processes[name] = (service, ports, process)

    def healthy(self, name: str) -> bool:
        """Whether the service's health check passes, run as Docker runs it (CMD form)."""
        service, ports, _ = self.processes[name]
        test = SERVICES[service]["healthcheck"]["test"]
        assert test[0] == "CMD"
        check = subprocess.run(
            **self._exec(service, test[1:], ports), capture_output=True, timeout=30
        )
        return check.returncode == 0

    def stop(self, name: str) -> int | None:
        """SIGTERM, as `docker compose stop` sends: the exit code, or None once the grace
        period is over (Docker would kill it then)."""
        service, _, process = self.processes.pop(name)
        process.send_signal(signal.SIGTERM)
        grace = float(SERVICES[service].get("stop_grace_period", "10s").removesuffix("s"))
        try:
            process.communicate(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return None
        return process.returncode

    def kill_all(self) -> None:
        for _, _, process in self.processes.values():
            process.kill()
            process.communicate()


@pytest.fixture
def stack() -> Iterator[Stack]:
    if connection.vendor != "postgresql":
        pytest.skip("compose.yaml runs PostgreSQL: this test runs in the PostgreSQL pass")
    port = str(free_port())
    running = Stack({"emulator:8765": f"127.0.0.1:{port}", "8765": port})
    yield running
    running.kill_all()


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def test_the_stack_runs_as_compose_yaml_says(stack: Stack) -> None:
    assert "Created the first admin" in stack.run("migrate")
    assert "No migrations to apply" in stack.run("migrate")  # again at each start: harmless

    stack.start("emulator", "emulator")
    wait_for(lambda: stack.healthy("emulator"))
    assert "Connected" in stack.run("demo-account")
    account = IsometricAccount.objects.get(name="Emulator (demo)")
    assert account.members.filter(username="admin").exists()
    facility = Facility.objects.get(account=account, name="Demo kiln")

    stack.start("web", "web", **{"8000": str(free_port())})
    for n in range(SERVICES["worker"]["deploy"]["replicas"]):
        stack.start(f"worker-{n}", "worker", **{"9100": str(free_port())})
    for name in ("web", "worker-0", "worker-1"):
        wait_for(partial(stack.healthy, name))

    # The workers pull the new account (its feedstock types) and push a batch recorded in it.
    wait_for(lambda: FeedstockType.objects.filter(account=account).exists())
    batch = make_batch(facility, list(FeedstockType.objects.filter(account=account)[:1]))
    wait_for(lambda: ProductionBatch.objects.get(pk=batch.pk).sync_status == SyncStatus.SYNCED)

    assert [stack.stop(name) for name in ("web", "worker-0", "worker-1", "emulator")] == [0] * 4


def test_the_image_copies_every_package_the_project_installs() -> None:
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    included = {pattern.rstrip("*") for pattern in packages["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (ROOT / "Dockerfile").read_text(), re.M))

    assert included <= copied, f"the Dockerfile does not copy {sorted(included - copied)}"
