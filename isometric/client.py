"""The portal's client for the Isometric Certify API (`/mrv/v0`).

One `requests.Session` per Client, so consecutive calls reuse one connection. Every call ends by
its deadline and reads at most max_response_bytes of answer, whatever the server does. Nothing is
retried here, except the pages of find_production_batch's scan: whether a failed call may be
repeated is the caller's decision, and TransportError says whether the request may have reached
Isometric.
"""

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError, version
from typing import Protocol, Self
from urllib.parse import quote

import requests
from requests.exceptions import ChunkedEncodingError, ContentDecodingError

from isometric.deadline import DeadlineAdapter, deadline
from isometric.errors import (
    IsometricError,
    MalformedResponse,
    RateLimited,
    RepeatedCursor,
    ServerError,
    TransportError,
)
from isometric.http_errors import json_body, response_error, transport_error
from isometric.models import FeedstockType, NewProductionBatch, Organisation, Page, ProductionBatch

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 50
DEFAULT_TIMEOUT = (3.05, 10.0)  # (connect, read) seconds
DEFAULT_DEADLINE = 30.0  # seconds for a whole request, from sending it to its answer's last byte
DEFAULT_MAX_RESPONSE_BYTES = 5 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
# find_production_batch's scan retries a failed page this often, pausing SCAN_PAUSE seconds (or a
# shorter Retry-After), and gives up once its pauses would exceed SCAN_PAUSE_TOTAL.
SCAN_RETRIES = 2
SCAN_PAUSE = 0.5
SCAN_PAUSE_TOTAL = 3.0
type Timeout = float | tuple[float, float]
type QueryParams = Mapping[str, str | int]


def _user_agent() -> str:
    try:
        return f"batch-portal/{version('batch-portal')}"
    except PackageNotFoundError:
        return "batch-portal/dev"


USER_AGENT = _user_agent()


class Pace(Protocol):
    """How often an organisation's clients may call Isometric, shared by all of them."""

    def wait_turn(self) -> None:
        """Return once the next request may go, or raise NotYourTurn."""

    def slow_down(self, retry_after: float | None) -> None:
        """Isometric answered 429."""


# Told of each request: its method, path, status (None: no answer) and seconds.
type Observer = Callable[[str, str, int | None, float], None]


class Client:
    """Isometric's API for one organisation: its client secret and access token go on every
    request. Methods return models and raise the errors in isometric.errors. With a `pace`,
    each request waits its turn."""

    def __init__(
        self,
        base_url: str,
        client_secret: str,
        access_token: str,
        timeout: Timeout = DEFAULT_TIMEOUT,
        deadline: float = DEFAULT_DEADLINE,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        pace: Pace | None = None,
        observe: Observer | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.pace = pace
        self.observe = observe
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self.timeout = (min(connect, deadline), read)
        self.deadline = deadline
        self.max_response_bytes = max_response_bytes
        self._secrets = [secret for secret in (client_secret, access_token) if secret]
        self._session = requests.Session()
        self._session.mount("http://", DeadlineAdapter())
        self._session.mount("https://", DeadlineAdapter())
        # The environment's proxy and CA bundle settings are read once here rather than on
        # every request, which would cost a scan of os.environ and a look for ~/.netrc each time.
        self._session.proxies = requests.utils.get_environ_proxies(self.base_url)
        self._session.verify = _environ_ca_bundle() or True
        self._session.trust_env = False
        self._session.headers.update(
            {
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
                "X-Client-Secret": client_secret,
                "Authorization": f"Bearer {access_token}",
            }
        )

    def __repr__(self) -> str:
        return f"Client(base_url={self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def list_production_batches(
        self,
        *,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
        supplier_reference_id: str | None = None,
    ) -> Page[ProductionBatch]:
        params = _page_params(first=first, after=after, last=last, before=before)
        if supplier_reference_id is not None:
            params["supplier_reference_id"] = supplier_reference_id
        return self._fetch("GET", "/production_batches", _read_batch_page, params=params)

    def iter_production_batches(self, page_size: int = MAX_PAGE_SIZE) -> Iterator[ProductionBatch]:
        for page in self.iter_production_batch_pages(page_size):
            yield from page.nodes

    def iter_production_batch_pages(
        self, page_size: int = MAX_PAGE_SIZE, *, read_ahead: bool = False
    ) -> Iterator[Page[ProductionBatch]]:
        """Every page, first to last. With read_ahead, the next page is fetched in a thread
        while the caller works on this one; the caller must not use the client meanwhile."""
        return _follow_cursors(
            lambda after: self.list_production_batches(first=page_size, after=after), read_ahead
        )

    def get_production_batch(self, batch_id: str) -> ProductionBatch:
        return self._fetch("GET", _batch_path(batch_id), ProductionBatch.from_json)

    def find_production_batch(self, supplier_reference_id: str) -> ProductionBatch | None:
        """The batch with this supplier_reference_id, or None.

        Not every Isometric version honours the filter, so the nodes are checked, and when the
        server ignored it, every page is scanned.
        """
        page = self.list_production_batches(
            first=MAX_PAGE_SIZE, supplier_reference_id=supplier_reference_id
        )
        if not page.nodes:
            return None
        for batch in page.nodes:
            if batch.supplier_reference_id == supplier_reference_id:
                return batch
        pauses_left = [SCAN_PAUSE_TOTAL]
        pages = _follow_cursors(lambda after: self._scanned_page(after, pauses_left))
        for page in pages:
            for batch in page.nodes:
                if batch.supplier_reference_id == supplier_reference_id:
                    return batch
        return None

    def _scanned_page(self, after: str | None, pauses_left: list[float]) -> Page[ProductionBatch]:
        """A page of the scan, retried after a short pause when it failed in a way that may pass;
        `pauses_left` holds the seconds of pause the whole scan may still spend."""
        retries = SCAN_RETRIES
        while True:
            try:
                return self.list_production_batches(first=MAX_PAGE_SIZE, after=after)
            except (ServerError, RateLimited, TransportError) as exc:
                pause = _scan_pause(exc)
                if retries == 0 or pause > pauses_left[0]:
                    raise
                retries -= 1
                pauses_left[0] -= pause
                log.info("%s; retrying the page in %.1f s", exc, pause)
                time.sleep(pause)

    def create_production_batch(self, batch: NewProductionBatch) -> ProductionBatch:
        return self._fetch(
            "POST", "/production_batches", ProductionBatch.from_json, body=batch.to_json()
        )

    def delete_production_batch(self, batch_id: str) -> None:
        self._send("DELETE", _batch_path(batch_id))

    def list_feedstock_types(
        self,
        *,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Page[FeedstockType]:
        params = _page_params(first=first, after=after, last=last, before=before)
        return self._fetch("GET", "/feedstock_types", _read_feedstock_page, params=params)

    def iter_feedstock_types(self, page_size: int = MAX_PAGE_SIZE) -> Iterator[FeedstockType]:
        pages = _follow_cursors(
            lambda after: self.list_feedstock_types(first=page_size, after=after)
        )
        for page in pages:
            yield from page.nodes

    def get_organisation(self) -> Organisation:
        return self._fetch("GET", "/organisation", Organisation.from_json)

    def _fetch[T](
        self,
        method: str,
        path: str,
        read: Callable[[object], T],
        *,
        params: QueryParams | None = None,
        body: dict[str, object] | None = None,
    ) -> T:
        status, content = self._send(method, path, params=params, body=body)
        try:
            return read(json_body(content))
        except ValueError:
            raise MalformedResponse(f"{method} {path}: the response is not JSON", status) from None
        except MalformedResponse as exc:
            raise MalformedResponse(f"{method} {path}: {exc}", status) from None

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: QueryParams | None = None,
        body: dict[str, object] | None = None,
    ) -> tuple[int, bytes]:
        """The status and body of a 2xx answer; any other answer raises its error."""
        what = f"{method} {path}"
        if self.pace is not None:
            self.pace.wait_turn()
        started = time.monotonic()
        try:
            with deadline(self.deadline):
                # No redirects: a redirect elsewhere would carry the client secret along.
                response = self._session.request(
                    method,
                    self.base_url + path,
                    params=params,
                    json=body,
                    timeout=self.timeout,
                    allow_redirects=False,
                    stream=True,
                )
                with response:
                    content = self._read_body(what, response)
        except (requests.ConnectionError, requests.Timeout, ChunkedEncodingError) as exc:
            self._observe(method, path, None, started)
            raise transport_error(what, exc) from exc
        except ContentDecodingError:
            self._observe(method, path, response.status_code, started)
            raise MalformedResponse(f"{what}: the response's encoding is broken") from None
        elapsed = self._observe(method, path, response.status_code, started)
        log.debug("%s -> %s in %.1f ms", what, response.status_code, elapsed * 1000)
        if not 200 <= response.status_code < 300:
            error = response_error(what, response, content, self._secrets)
            if isinstance(error, RateLimited) and self.pace is not None:
                self.pace.slow_down(error.retry_after)
            raise error
        return response.status_code, content

    def _observe(self, method: str, path: str, status: int | None, started: float) -> float:
        elapsed = time.monotonic() - started
        if self.observe is not None:
            self.observe(method, path, status, elapsed)
        return elapsed

    def _read_body(self, what: str, response: requests.Response) -> bytes:
        """The body, read a chunk at a time so that an answer too large is refused before it is
        held in memory."""
        content = bytearray()
        for chunk in response.iter_content(CHUNK_BYTES):
            content += chunk
            if len(content) > self.max_response_bytes:
                message = f"{what}: answer too large (over {self.max_response_bytes} bytes)"
                raise MalformedResponse(message, response.status_code)
        return bytes(content)


def _scan_pause(exc: IsometricError) -> float:
    retry_after = getattr(exc, "retry_after", None)
    return SCAN_PAUSE if retry_after is None else retry_after


def _environ_ca_bundle() -> str | None:
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")


def _page_params(
    *, first: int | None, after: str | None, last: int | None, before: str | None
) -> dict[str, str | int]:
    given = {"first": first, "after": after, "last": last, "before": before}
    return {name: value for name, value in given.items() if value is not None}


def _batch_path(batch_id: str) -> str:
    return f"/production_batches/{quote(batch_id, safe='')}"


def _read_batch_page(data: object) -> Page[ProductionBatch]:
    return Page.from_json(data, ProductionBatch.from_json)


def _read_feedstock_page(data: object) -> Page[FeedstockType]:
    return Page.from_json(data, FeedstockType.from_json)


def _follow_cursors[T](
    fetch_page: Callable[[str | None], Page[T]], read_ahead: bool = False
) -> Iterator[Page[T]]:
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="isometric-read-ahead") as pool:

        def fetch(after: str | None) -> Future[Page[T]]:
            return pool.submit(fetch_page, after) if read_ahead else _done(fetch_page, after)

        seen: set[str] = set()
        next_page: Future[Page[T]] | None = fetch(None)
        while next_page is not None:
            page = next_page.result()
            next_page = None
            if page.page_info.has_next_page:
                next_page = fetch(_next_cursor(page, seen))
            yield page


def _done[T](fetch_page: Callable[[str | None], Page[T]], after: str | None) -> Future[Page[T]]:
    """The page fetched now, as a finished Future (or one holding the error)."""
    future: Future[Page[T]] = Future()
    try:
        future.set_result(fetch_page(after))
    except BaseException as exc:
        future.set_exception(exc)
    return future


def _next_cursor[T](page: Page[T], seen: set[str]) -> str:
    after = page.page_info.end_cursor
    if after is None:
        raise MalformedResponse("has_next_page is true but end_cursor is null")
    if after in seen:
        raise RepeatedCursor(f"the server returned the cursor {after!r} twice")
    seen.add(after)
    return after
