"""The "In Isometric" page's own time, against a bare view making the same API call.

    python bench/remote_pages.py [--latency-ms 50] [--views 150]

Against the emulator in its own process (1 000 batches, mirrored in the portal as the worker
keeps them; 50 ms latency), pages through the list with each page size, following the cursors.
Each page view (the whole request, as a WSGI server makes it), the same request to a bare view
(bench/remote_urls.py: the same middleware, session, login and API call, a minimal template) and
the same API call made directly with the client are timed in alternating runs of five. A view's
own time is its median less the API call's. Prints the page's own time / the bare view's (target
<= 2), the API calls per page view (target 1) and the TCP connections the emulator accepted for
all the page views (target 1: the page reuses its connection).
"""

import argparse
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode
from wsgiref.util import setup_testing_defaults

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.emulator_process import EmulatorProcess  # noqa: E402

RATIO_TARGET = 2.0
# Page views and the same calls made directly alternate in runs of RUN, so that both see the
# machine as it is at the time, and each its own code warm (as bench/list_pages.py times pages).
RUN = 5
SIZES = (10, 25, 50)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--views", type=int, default=150)
    return parser.parse_args()


def configure() -> None:
    from cryptography.fernet import Fernet

    data = ROOT / "bench" / ".data"
    data.mkdir(exist_ok=True)
    for stale in data.glob("remote_pages.sqlite3*"):
        stale.unlink()
    os.environ["DATABASE_URL"] = f"sqlite:///{data / 'remote_pages.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["DEBUG"] = "0"
    os.environ["ENCRYPTION_KEYS"] = Fernet.generate_key().decode()
    import django
    from django.conf import settings

    django.setup()
    settings.ROOT_URLCONF = "bench.remote_urls"
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def total_requests(emulator: EmulatorProcess) -> tuple[int, int]:
    """API requests and TCP connections so far (this request's connection included)."""
    stats = emulator.control("stats")
    requests = stats["requests"]
    assert isinstance(requests, dict)
    connections = stats["connections_opened"]
    assert isinstance(connections, int)
    return sum(sum(outcomes.values()) for outcomes in requests.values()), connections


class PageViews:
    """The page as a browser asks a WSGI server for it: with the cookies the portal set (Django's
    test client would never close the database connection, which a server's requests do when
    it is not kept)."""

    def __init__(self, cookies: SimpleCookie, path: str) -> None:
        from django.core.wsgi import get_wsgi_application

        self.application = get_wsgi_application()
        self.cookies = cookies
        self.path = path

    def __call__(self, query: dict[str, str]) -> bytes:
        environ = {
            "PATH_INFO": self.path,
            "QUERY_STRING": urlencode(query),
            "HTTP_HOST": "localhost",
            "HTTP_COOKIE": self.cookies.output(attrs=[], header="", sep=";").strip(),
        }
        setup_testing_defaults(environ)
        response = self.application(environ, self._start_response)
        try:
            return b"".join(response)
        finally:
            response.close()

    def _start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        for name, value in headers:
            if name.lower() == "set-cookie":
                self.cookies.load(value)
        return lambda body: None


def main() -> int:
    args = parse_args()
    configure()
    from django.contrib.auth.models import Group, User
    from django.test import Client as WebClient

    from batches import sync
    from batches.roles import OPERATORS
    from isometric.client import Client
    from portal.models import Environment, IsometricAccount

    emulator = EmulatorProcess()
    try:
        emulator.control("seed", {"count": 1000})
        emulator.control("config", {"latency_ms": args.latency_ms})
        account = IsometricAccount(
            name="Bench", environment=Environment.CUSTOM, base_url=emulator.base_url
        )
        account.set_credentials(
            client_secret=emulator.client_secret, access_token=emulator.access_token
        )
        account.save()
        sync.pull(account)  # as the worker keeps it: every row links to the portal's copy
        # An operator, as most users are: their page checks permissions and membership.
        user = User.objects.create_user("bench", password="bench")
        user.groups.add(Group.objects.get(name=OPERATORS))
        account.members.add(user)
        web = WebClient()
        web.force_login(user)
        view_page = PageViews(web.cookies, "/batches/isometric/")
        view_bare = PageViews(web.cookies, "/bare/")
        api = Client(emulator.base_url, emulator.client_secret, emulator.access_token)
        view_page({})  # warm up: templates, the connections
        view_bare({"size": "10"})
        api.list_production_batches(first=10)

        times: dict[str, list[float]] = {"page": [], "bare": [], "api": []}
        page_requests = page_connections = 0
        cursors = {size: "" for size in SIZES}
        for first in range(0, args.views, RUN):
            run = []
            requests_before, connections_before = total_requests(emulator)
            for view in range(first, min(first + RUN, args.views)):
                size = SIZES[view % len(SIZES)]
                query = {"size": str(size), **({"after": cursors[size]} if cursors[size] else {})}
                run.append(query)
                started = time.perf_counter()
                page = view_page(query)
                times["page"].append(time.perf_counter() - started)
                assert b"batches in Isometric" in page, page[-3000:]
                found = re.search(rb'rel="next" href="[^"]*after=([^"&]+)', page)
                cursors[size] = unquote(found.group(1).decode()) if found else ""
            requests_after, connections_after = total_requests(emulator)
            page_requests += requests_after - requests_before
            page_connections += connections_after - connections_before - 1
            # The same requests to the bare view, then straight from the client.
            for query in run:
                started = time.perf_counter()
                view_bare(query)
                times["bare"].append(time.perf_counter() - started)
            for query in run:
                started = time.perf_counter()
                api.list_production_batches(
                    first=int(query["size"]), after=query.get("after") or None
                )
                times["api"].append(time.perf_counter() - started)
    finally:
        emulator.stop()

    page_ms, bare_ms, api_ms = (statistics.median(times[kind]) * 1000 for kind in times)
    ratio = (page_ms - api_ms) / (bare_ms - api_ms)
    calls = page_requests / args.views
    print(f"{args.views} page views (sizes {SIZES}), emulator latency {args.latency_ms:g} ms")
    print(f"median page {page_ms:.2f} ms, bare view {bare_ms:.2f} ms, API call {api_ms:.2f} ms")
    print(f"own time: page {page_ms - api_ms:.2f} ms, bare view {bare_ms - api_ms:.2f} ms")
    print(f"page / bare      {ratio:.2f} {verdict(ratio <= RATIO_TARGET)} (target <= 2)")
    print(f"API calls a view {calls:.2f} {verdict(calls == 1)} (target 1)")
    print(f"new connections  {page_connections} {verdict(page_connections <= 1)} (target <= 1)")
    return 0 if ratio <= RATIO_TARGET and calls == 1 and page_connections <= 1 else 1


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


if __name__ == "__main__":
    sys.exit(main())
