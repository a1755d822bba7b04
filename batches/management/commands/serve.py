import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from batches.models import Facility
from isometric.emulator import Emulator
from portal.accounts import check_connection
from portal.first_admin import create_first_admin
from portal.models import ConnectionStatus, Environment, IsometricAccount

EMULATOR_ACCOUNT = "Emulator (local)"


class Command(BaseCommand):
    help = (
        "Run the portal for development: the web server, a sync worker and, while the portal "
        "has no Isometric account of its own, a local Isometric emulator with an account for it "
        "(EMULATOR=0 leaves it out). A first admin is created if there is none; once the portal "
        "answers, its address and the login are printed last. Ctrl-C stops them all."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("address", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args: Any, address: str, **options: Any) -> None:
        # Stopped by a process manager (SIGTERM) as by Ctrl-C: everything stops with it.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        host, port = _local_address(address)
        # Something else on the port: runserver stops with its own message, and no welcome.
        welcome = None if _listening(host, port) else _welcome(host, port, create_first_admin())
        emulator = self._start_emulator() if _wants_emulator() else None
        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        # Each in a process group of its own (runserver's reloader has a child), stopped here.
        processes = [
            subprocess.Popen([*manage, "sync_worker"], process_group=0),
            subprocess.Popen([*manage, "runserver", address], process_group=0),
        ]
        try:
            # If either stops on its own (a port in use, say), the other is stopped with it.
            while all(process.poll() is None for process in processes):
                if welcome and _listening(host, port):
                    self.stdout.write(self.style.SUCCESS(welcome))
                    self.stdout.flush()
                    welcome = None
                time.sleep(0.5)
        except KeyboardInterrupt:
            return
        finally:
            for process in processes:
                _stop(process)
            if emulator is not None:
                emulator.stop()
        raise CommandError("The portal stopped: see the messages above.")

    def _start_emulator(self) -> Emulator:
        port = int(os.environ.get("EMULATOR_PORT", "8765"))
        state = os.environ.get("EMULATOR_STATE") or Path(settings.BASE_DIR) / ".emulator-state.json"
        try:
            emulator = Emulator(port=port, seed=40, state_file=state).start()
        except OSError as exc:
            raise CommandError(
                f"Could not start the Isometric emulator on port {port} ({exc}). Set "
                "EMULATOR_PORT to another port, or EMULATOR=0 to run without it."
            ) from exc
        account = _emulator_account(emulator)
        self.stdout.write(
            f"Isometric emulator on {emulator.base_url}, as the account “{account.name}” "
            f"({account.get_connection_status_display().lower()}). EMULATOR=0 runs without it."
        )
        return emulator


def _welcome(host: str, port: int, password: str | None) -> str:
    """What a newcomer needs, in a box: where the portal is and how to log in."""
    url = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
    admin = (
        get_user_model()
        .objects.filter(is_superuser=True)
        .order_by("pk")
        .values_list("username", flat=True)
        .first()
    )
    lines = [f"Batch Portal is running: open {url}", ""]
    if password:
        lines += [
            "Log in as the first admin (shown only this once):",
            f"  user name  {admin}",
            f"  password   {password}",
        ]
    else:
        lines += [f"Log in as {admin}, or as any user an admin has made."]
    lines += [
        f"A new password: .venv/bin/python manage.py changepassword {admin}",
        "Ctrl-C stops the portal.",
    ]
    width = max(len(line) for line in lines)
    return "\n".join(
        [
            f"╭{'─' * (width + 2)}╮",
            *(f"│ {line:<{width}} │" for line in lines),
            f"╰{'─' * (width + 2)}╯",
        ]
    )


def _local_address(address: str) -> tuple[str, int]:
    """Where this machine reaches the web server runserver starts at `address` (as runserver
    reads it: "PORT", "HOST:PORT", "[IPv6]:PORT"; a wildcard host is reached at 127.0.0.1)."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0", "0.0.0.0", "::"):
        host = "127.0.0.1"
    try:
        return host, int(port)
    except ValueError:
        raise CommandError(
            f"“{address}” is not an address and port, such as 127.0.0.1:8000."
        ) from None


def _listening(host: str, port: int) -> bool:
    """Whether something accepts connections there. (A connection that sends nothing is not a
    request: runserver logs nothing for it.)"""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _wants_emulator() -> bool:
    """Unless told not to, while the portal has no Isometric account but the emulator's."""
    if os.environ.get("EMULATOR", "1") == "0":
        return False
    return not IsometricAccount.objects.exclude(name=EMULATOR_ACCOUNT).exists()


def _emulator_account(emulator: Emulator) -> IsometricAccount:
    """The emulator's account, pointed at it with its current credentials, and its facilities
    known here (Isometric has no facility endpoint)."""
    account = IsometricAccount.objects.filter(name=EMULATOR_ACCOUNT).first() or IsometricAccount(
        name=EMULATOR_ACCOUNT
    )
    account.environment = Environment.CUSTOM
    account.base_url = emulator.base_url
    account.set_credentials(
        client_secret=emulator.client_secret, access_token=emulator.access_token
    )
    account.save()
    for facility in emulator.facilities():
        Facility.objects.get_or_create(
            account=account, isometric_id=facility["id"], defaults={"name": facility["name"]}
        )
    check_connection(account)
    if account.connection_status != ConnectionStatus.OK:
        raise CommandError(f"The emulator did not answer: {account.connection_message}")
    return account


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM for the process's group (the worker finishes its pushes); a kill if unheard."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
