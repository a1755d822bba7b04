"""What the client adds on top of Isometric's own latency, and whether it reuses its connection.

200 page fetches (following the cursors) against the emulator answering after 20 ms. Prints the
median client time divided by that latency (target <= 1.10) and the number of TCP connections the
emulator accepted (target 1).

Run: .venv/bin/python bench/client.py [--page-size N]  (default 10, the API's default page)
"""

import argparse
import statistics
import sys
import time

from isometric.client import Client
from isometric.emulator import Emulator

FETCHES = 200
LATENCY_MS = 20
RATIO_TARGET = 1.10
CONNECTIONS_TARGET = 1


def fetch_pages(client: Client, page_size: int) -> list[float]:
    """Seconds per fetch, starting over at the first page after the last."""
    durations = []
    after = None
    for _ in range(FETCHES):
        started = time.perf_counter()
        page = client.list_production_batches(first=page_size, after=after)
        durations.append(time.perf_counter() - started)
        after = page.page_info.end_cursor if page.page_info.has_next_page else None
    return durations


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--page-size", type=int, default=10, help="batches a page, 1 to 50")
    page_size = parser.parse_args().page_size
    with Emulator(seed=137) as emulator:
        emulator.configure(latency_ms=LATENCY_MS)
        with Client(emulator.base_url, emulator.client_secret, emulator.access_token) as client:
            durations = fetch_pages(client, page_size)
        connections = emulator.stats()["connections_opened"]

    median_ms = statistics.median(durations) * 1000
    p95_ms = statistics.quantiles(durations, n=20)[-1] * 1000
    ratio = median_ms / LATENCY_MS
    ratio_ok = ratio <= RATIO_TARGET
    connections_ok = connections == CONNECTIONS_TARGET
    print(f"{FETCHES} page fetches of {page_size} batches, emulator latency {LATENCY_MS} ms")
    print(f"median client time {median_ms:.2f} ms, p95 {p95_ms:.2f} ms")
    print(f"median / latency   {ratio:.3f} (target <= {RATIO_TARGET}) {verdict(ratio_ok)}")
    print(
        f"TCP connections    {connections} (target {CONNECTIONS_TARGET}) {verdict(connections_ok)}"
    )
    return 0 if ratio_ok and connections_ok else 1


if __name__ == "__main__":
    sys.exit(main())
