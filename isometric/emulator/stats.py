"""What the emulator saw, for tests and benchmarks: GET /_emulator/stats."""

import threading
from collections import Counter, defaultdict


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
            self._created: Counter[str] = Counter()
            self._connections = 0

    def connection_opened(self) -> None:
        with self._lock:
            self._connections += 1

    def request(self, route: str, outcome: str) -> None:
        """`outcome` is the status sent, or "lost" or "reset" when none was."""
        with self._lock:
            self._requests[route][outcome] += 1

    def created(self, supplier_reference_id: str) -> None:
        with self._lock:
            self._created[supplier_reference_id] += 1

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "requests": {route: dict(counts) for route, counts in self._requests.items()},
                "created_by_supplier_reference_id": dict(self._created),
                "connections_opened": self._connections,
            }
