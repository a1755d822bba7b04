import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from batches.models import Facility
from isometric.emulator import Emulator
from portal.accounts import check_connection
from portal.models import ConnectionStatus, Environment, IsometricAccount

EMULATOR_ACCOUNT = "Emulator (local)"


class Command(BaseCommand):
    help = (
        "Run the portal for development: the web server, a sync worker and, while the portal "
        "has no Isometric account of its own, a local Isometric emulator with an account for it "
        "(EMULATOR=0 leaves it out). Ctrl-C stops them all."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("address", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args: Any, address: str, **options: Any) -> None:
        # Stopped by a process manager (SIGTERM) as by Ctrl-C: everything stops with it.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
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
