"""What the portal measures, for Prometheus: `/metrics` for the web processes, and the sync
worker's own (`sync_worker --metrics-port`), readable only with METRICS_TOKEN or from
METRICS_ALLOWED_ADDRESSES.

Each process counts what it does (pages served, calls to Isometric, sync attempts); gauges of
the portal's state (batches by status, the oldest waiting, the last pulls) are read from the
database when scraped (batches/metrics.py). Under gunicorn, PROMETHEUS_MULTIPROC_DIR adds its
processes' counts up (prometheus_client's multiprocess mode; gunicorn.conf.py clears a dead
process's).
"""

import hmac
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
    make_wsgi_app,
    multiprocess,
)
from prometheus_client.registry import Collector

from portal import proxies

log = logging.getLogger(__name__)

REQUEST_SECONDS = Histogram(
    "batch_portal_request_seconds",
    "Time the portal took to answer a request, by view, method and status.",
    ["view", "method", "status"],
)
ISOMETRIC_SECONDS = Histogram(
    "batch_portal_isometric_request_seconds",
    "Time Isometric took to answer a request (status 'none': no answer), by endpoint.",
    ["method", "endpoint", "status"],
)
# An Isometric id in a path ("/production_batches/ptb_1G8QT5ZAB1S0XSDW"), counted as one
# endpoint whatever the id.
_ID = re.compile(r"/[a-z]{2,5}_[0-9A-Za-z]{8,}")
_state: list[Collector] = []


def add_state(collector: Collector) -> None:
    """A collector of the portal's state, read when scraped, in whichever registry serves."""
    _state.append(collector)
    REGISTRY.register(collector)


def registry() -> CollectorRegistry:
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    combined = CollectorRegistry()
    multiprocess.MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
    for collector in _state:
        combined.register(collector)
    return combined


def observe_isometric(method: str, path: str, status: int | None, seconds: float) -> None:
    endpoint = _ID.sub("/{id}", path)
    ISOMETRIC_SECONDS.labels(method, endpoint, status or "none").observe(seconds)


def allowed(address: str, authorization: str) -> bool:
    """Whether a scrape may read the metrics: it carries the token, or comes from an allowed
    address, and not through a trusted proxy (whose address every request it passes on has).
    Neither set: nobody may."""
    token = settings.METRICS_TOKEN
    if token and hmac.compare_digest(authorization.encode(), f"Bearer {token}".encode()):
        return True
    if proxies.address_in(address, proxies.networks(settings.TRUSTED_PROXIES)):
        return False
    return proxies.address_in(address, proxies.networks(settings.METRICS_ALLOWED_ADDRESSES))


@login_not_required
@never_cache
@require_GET
def export(request: HttpRequest) -> HttpResponse:
    if not allowed(request.META.get("REMOTE_ADDR", ""), request.headers.get("Authorization", "")):
        return HttpResponse(
            "Metrics need the metrics token or an allowed address.\n",
            status=403,
            content_type="text/plain",
        )
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


class RequestTimingMiddleware:
    """Times each request: a sample of REQUEST_SECONDS, labelled by the view that answered (not
    the path: ids would make every batch a series of its own), and a log line."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.static = "/" + settings.STATIC_URL.lstrip("/")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        seconds = time.perf_counter() - started
        match = request.resolver_match
        static = request.path.startswith(self.static)
        view = match.view_name if match else "static" if static else "unresolved"
        REQUEST_SECONDS.labels(view, request.method, response.status_code).observe(seconds)
        user = getattr(request, "user", None)
        log.info(
            "%s %s %s %.1f ms",
            request.method,
            request.path,
            response.status_code,
            seconds * 1000,
            extra={
                "method": request.method,
                "path": request.path,
                "view": view,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 1),
                "user_id": user.pk if user is not None and user.is_authenticated else None,
            },
        )
        return response


def serve_worker_metrics(port: int) -> None:
    """The sync worker's own metrics on `port`, with the same access rule, from a thread of
    its own (the worker has no web server)."""
    export_all = make_wsgi_app(registry())

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not allowed(environ.get("REMOTE_ADDR", ""), environ.get("HTTP_AUTHORIZATION", "")):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"Metrics need the metrics token or an allowed address.\n"]
        return export_all(environ, start_response)

    server = make_server("0.0.0.0", port, app, handler_class=_Quiet)  # type: ignore[arg-type]
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would fill the worker's log."""
