"""The emulator in a process of its own, as Isometric would be, for the benchmarks."""

import json
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FACILITY_ID = "fcl_BENCHSYNC000000000001"
FEEDSTOCK_TYPE_ID = "ftt_BENCHSYNC000000000001"


class EmulatorProcess:
    """`python -m isometric.emulator` on a free port, and its control endpoint."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "isometric.emulator",
                f"--port={self.port}",
                f"--facility={FACILITY_ID}",
                f"--feedstock-type={FEEDSTOCK_TYPE_ID}",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        banner = [self.process.stdout.readline() for _ in range(3)]
        self.client_secret = banner[1].split(":", 1)[1].strip()
        self.access_token = banner[2].split("Bearer", 1)[1].strip()
        self.base_url = f"http://127.0.0.1:{self.port}/mrv/v0"

    def control(self, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/_emulator/{path}",
            data=None if body is None else json.dumps(body).encode(),
            method="GET" if body is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer: dict[str, object] = json.loads(response.read() or b"{}")
            return answer

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()
