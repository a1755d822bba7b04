"""A hostile Isometric: a real HTTP server on 127.0.0.1 that speaks enough of /mrv/v0 for the
client, a push, a pull and the "In Isometric" page, and misbehaves on demand.

    with HostileIsometric() as server:
        server.mode = "drip"
        Client(server.base_url, server.client_secret, server.access_token).get_organisation()

Routes: GET /production_batches (pages of `server.batches`, honouring first/after and the
supplier_reference_id filter), POST /production_batches (stores and returns the batch with a new
"ptb_" id, or `created_id` when set), GET /production_batches/{id}, GET /feedstock_types,
GET /organisation. Credentials are not checked; every request is recorded in `received`.

`mode` may be changed at any time ("normal" by default):
- "html": an HTML page.   - "truncated_json": JSON cut short.   - "empty_body": no body at all.
- "deep_json": arrays nested 10,000 deep. (These four answer 200, or `error_status` when set.)
- "nan_numbers": one node's mass is NaN, Infinity or 1e309 (by the node's position).
- "year_1", "year_9999": one node's started_at overflows when converted to UTC.
- "long_strings": one node's display_name, mass unit and supplier_reference_id are far too long.
- "taken_id": created batches, answers by id and one node of each page carry `taken_id`.
  In these bad-node modes a page holds the good batches beside the bad node, and answers about a
  single batch (POST, GET by id) are the bad node itself.
- "retry_after_huge", "retry_after_negative", "retry_after_date": 429 with such a Retry-After
  (`retry_after` overrides the header's value).
- "drip": the body is sent one byte every `drip_interval` seconds; "drip_headers": the status line
  and headers too.
- "huge": a 200 whose body is HUGE_BYTES of chunked JSON, streamed.
- "redirect": 302 to the same path on a second server; `elsewhere_received` records what reached it.
- "unauthorized_once": the first request is a 401, the next ones are answered normally.
- "echo_secret": 400 (422 for a POST) whose message echoes the first 12 characters of the
  X-Client-Secret received.
- "ignore_filter": supplier_reference_id is ignored.
- "flaky_pages": supplier_reference_id is ignored too, and every second GET /production_batches is
  a 503 (with `retry_after` as its Retry-After when set).
Setting `mode` starts it afresh (e.g. "unauthorized_once" fails once again). Handlers stop
streaming when the client disconnects or the server shuts down; threads are daemonic.
"""

import contextlib
import json
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

API = "/mrv/v0"
FACILITY_ID = "fcl_1G8QT5ZAB1S0XSDW"
FEEDSTOCK_TYPE_IDS = ["ftt_1D7KZ1P761S0G7BN", "ftt_1CSRJN4HHSBXZ3TK"]
ORGANISATION = {"id": "org_1GB56M1ST1S0GVNA", "name": "Hostile Char Co"}
HUGE_BYTES = 100 * 1024 * 1024
DEEP = 10_000
MODES = frozenset(
    {
        "normal",
        "html",
        "truncated_json",
        "empty_body",
        "deep_json",
        "nan_numbers",
        "year_1",
        "year_9999",
        "long_strings",
        "taken_id",
        "retry_after_huge",
        "retry_after_negative",
        "retry_after_date",
        "drip",
        "drip_headers",
        "huge",
        "redirect",
        "unauthorized_once",
        "echo_secret",
        "ignore_filter",
        "flaky_pages",
    }
)
BAD_NODE_MODES = frozenset({"nan_numbers", "year_1", "year_9999", "long_strings", "taken_id"})
RETRY_AFTER = {
    "retry_after_huge": "99999999999999",
    "retry_after_negative": "-5",
    "retry_after_date": "Fri, 31 Dec 9999 23:59:59 GMT",
}
NAN_MASSES = ["NaN", "Infinity", "-Infinity", "1e309"]


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


def batch(number: int, **changes: object) -> dict[str, object]:
    """A valid production batch as Isometric returns it."""
    started = datetime(2025, 3, 1, 6, tzinfo=UTC) + timedelta(days=number)
    data: dict[str, object] = {
        "id": f"ptb_HOSTILE{number:013d}",
        "facility_id": FACILITY_ID,
        "feedstock_type_ids": FEEDSTOCK_TYPE_IDS,
        "supplier_reference_id": f"HOSTILE-{number}",
        "kind": "biochar",
        "started_at": _iso(started),
        "ended_at": _iso(started + timedelta(hours=20)),
        "uploaded_at": _iso(started + timedelta(days=1)),
        "display_name": f"Hostile kiln {number}",
        "mass": {"magnitude": 10.0 + number, "unit": "tonne", "standard_deviation": 0.5},
    }
    data.update(changes)
    return data


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class HostileIsometric:
    def __init__(
        self,
        mode: str = "normal",
        *,
        batch_count: int = 3,
        taken_id: str = "ptb_TAKEN00000000000000",
        client_secret: str = "hostile-client-secret-0123456789",
        access_token: str = "eyJhbGciOiJIUzI1NiJ9.eyJvcmciOiJvcmdfSE9TVElMRSJ9.aG9zdGlsZQ",
    ) -> None:
        self.batches = [batch(number) for number in range(1, batch_count + 1)]
        self.taken_id = taken_id
        self.created_id: str | None = None
        self.client_secret = client_secret
        self.access_token = access_token
        self.retry_after: str | None = None
        self.error_status: int | None = None
        self.drip_interval = 1.0
        self.received: list[Received] = []
        self.elsewhere_received: list[Received] = []
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self.mode = mode
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(self.received, True))
        self._elsewhere = ThreadingHTTPServer(
            ("127.0.0.1", 0), self._handler(self.elsewhere_received, False)
        )

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {sorted(MODES)}")
        with self._lock:
            self._mode = mode
            self._requests_in_mode = 0
            self._pages_in_mode = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        return self.url + API

    @property
    def elsewhere_url(self) -> str:
        return f"http://127.0.0.1:{self._elsewhere.server_address[1]}"

    def __enter__(self) -> Self:
        for server in (self._server, self._elsewhere):
            threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            ).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        for server in (self._server, self._elsewhere):
            server.shutdown()
            server.server_close()

    def _count(self, path: str, method: str) -> tuple[int, int]:
        """This request's number in the mode, and its number among GET pages of batches."""
        with self._lock:
            self._requests_in_mode += 1
            if method == "GET" and path == "/production_batches":
                self._pages_in_mode += 1
            return self._requests_in_mode, self._pages_in_mode

    def _handler(self, record: list[Received], answers: bool) -> type[BaseHTTPRequestHandler]:
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length", 0))
                received = Received(
                    self.command,
                    split.path,
                    parse_qs(split.query),
                    dict(self.headers.items()),
                    self.rfile.read(length),
                )
                record.append(received)
                if answers:
                    _Exchange(hostile, self, received).answer()
                else:
                    _send(self, 404, b'{"detail": "Not Found"}')

            do_POST = do_DELETE = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    for name, value in (headers or {"Content-Type": "application/json"}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class _Exchange:
    """One request to the hostile server and its answer in the current mode."""

    def __init__(
        self, hostile: HostileIsometric, handler: BaseHTTPRequestHandler, received: Received
    ) -> None:
        self.hostile = hostile
        self.handler = handler
        self.received = received
        self.mode = hostile.mode
        self.path = received.path.removeprefix(API)
        self.number, self.page_number = hostile._count(self.path, received.method)

    def answer(self) -> None:
        # The client may give up before the answer is all sent.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._answer()

    def _answer(self) -> None:
        mode = self.mode
        if mode in RETRY_AFTER:
            retry_after = self.hostile.retry_after or RETRY_AFTER[mode]
            self._json(429, {"detail": "Too Many Requests"}, {"Retry-After": retry_after})
        elif mode == "redirect":
            location = self.hostile.elsewhere_url + self.received.path
            _send(self.handler, 302, b"", {"Location": location})
        elif mode == "unauthorized_once" and self.number == 1:
            self._json(401, {"detail": "Not authenticated"})
        elif mode == "echo_secret":
            self._echo_secret()
        elif mode == "flaky_pages" and self._is_batch_page() and self.page_number % 2 == 0:
            wait = self.hostile.retry_after
            self._json(503, {"detail": "Unavailable"}, {"Retry-After": wait} if wait else {})
        elif mode == "html":
            page = b"<html><body>Gateway says hello</body></html>"
            _send(self.handler, self._broken_status(), page, {})
        elif mode == "truncated_json":
            self._raw(self._broken_status(), _with_raw(self._route()[1]).encode()[:-7])
        elif mode == "empty_body":
            self._raw(self._broken_status(), b"")
        elif mode == "deep_json":
            self._raw(self._broken_status(), b"[" * DEEP + b"]" * DEEP)
        elif mode == "huge":
            self._huge()
        elif mode in ("drip", "drip_headers"):
            status, data = self._route()
            self._drip(status, _with_raw(data).encode())
        else:
            status, data = self._route()
            self._json(status, data)

    def _is_batch_page(self) -> bool:
        return self.received.method == "GET" and self.path == "/production_batches"

    def _broken_status(self) -> int:
        return self.hostile.error_status or 200

    def _route(self) -> tuple[int, object]:
        method, path = self.received.method, self.path
        if self._is_batch_page():
            return self._batch_page()
        if method == "POST" and path == "/production_batches":
            return self._create()
        if method == "GET" and path.startswith("/production_batches/"):
            return self._one(path.removeprefix("/production_batches/"))
        if method == "GET" and path == "/feedstock_types":
            nodes = [
                {"id": FEEDSTOCK_TYPE_IDS[0], "name": "Rice husk", "supplier_reference_id": None},
                {"id": FEEDSTOCK_TYPE_IDS[1], "name": "Pine chips", "supplier_reference_id": "P"},
            ]
            return 200, _page(nodes, 0, len(nodes), len(nodes))
        if method == "GET" and path == "/organisation":
            return 200, ORGANISATION
        return 404, {"detail": "Not Found"}

    def _batch_page(self) -> tuple[int, object]:
        query = self.received.query
        batches = list(self.hostile.batches)
        wanted = query.get("supplier_reference_id")
        if wanted and self.mode not in ("ignore_filter", "flaky_pages"):
            batches = [b for b in batches if b["supplier_reference_id"] == wanted[0]]
        try:
            first = int(query.get("first", ["10"])[0])
            offset = int(query.get("after", ["cursor-0"])[0].removeprefix("cursor-"))
        except ValueError:
            return 422, {"detail": [{"loc": ["query", "after"], "msg": "bad", "type": "value"}]}
        nodes = batches[offset : offset + first]
        if self.mode in BAD_NODE_MODES:
            nodes.insert(min(1, len(nodes)), self._bad_node(self.page_number))
        return 200, _page(nodes, offset, offset + first, len(batches))

    def _create(self) -> tuple[int, object]:
        try:
            body = json.loads(self.received.body)
        except ValueError:
            return 422, {"detail": [{"loc": ["body"], "msg": "JSON decode error", "type": "json"}]}
        if self.mode in BAD_NODE_MODES:
            return 200, self._bad_node(0)
        created = {
            **batch(0),
            **body,
            "id": self.hostile.created_id or "ptb_" + uuid.uuid4().hex[:22].upper(),
            "uploaded_at": _iso(datetime.now(UTC)),
            "display_name": body.get("display_name") or "Hostile created batch",
        }
        self.hostile.batches.append(created)
        return 200, created

    def _one(self, batch_id: str) -> tuple[int, object]:
        if self.mode in BAD_NODE_MODES:
            return 200, self._bad_node(0)
        for each in self.hostile.batches:
            if each["id"] == batch_id:
                return 200, each
        return 404, {"detail": "Not Found"}

    def _bad_node(self, number: int) -> dict[str, object]:
        mode = self.mode
        bad = batch(900 + number)
        if mode == "nan_numbers":
            magnitude = NAN_MASSES[number % len(NAN_MASSES)]
            bad["mass"] = _Raw(f'{{"magnitude": {magnitude}, "unit": "tonne"}}')
        elif mode == "year_1":
            bad["started_at"] = "0001-01-01T00:00:00+05:00"
        elif mode == "year_9999":
            bad["started_at"] = "9999-12-31T23:59:59-14:00"
        elif mode == "long_strings":
            bad["display_name"] = "D" * 5000
            bad["supplier_reference_id"] = "S" * 5000
            bad["mass"] = {"magnitude": 1.0, "unit": "U" * 5000, "standard_deviation": None}
        elif mode == "taken_id":
            bad["id"] = self.hostile.taken_id
        return bad

    def _echo_secret(self) -> None:
        echoed = self.received.headers.get("X-Client-Secret", "")[:12]
        if self.received.method == "POST":
            error = {"loc": ["header", echoed], "msg": f"secret {echoed}... is bad", "type": echoed}
            self._json(422, {"detail": [error]})
        else:
            self._json(400, {"detail": f"The client secret {echoed}... is not valid"})

    def _json(self, status: int, data: object, headers: dict[str, str] | None = None) -> None:
        self._raw(status, _with_raw(data).encode(), headers)

    def _raw(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        _send(self.handler, status, body, {"Content-Type": "application/json", **(headers or {})})

    def _drip(self, status: int, body: bytes) -> None:
        handler = self.handler
        head = (
            f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        if self.mode == "drip":
            handler.wfile.write(head)
            handler.wfile.flush()
            head = b""
        for byte in head + body:
            if self.hostile._stopping.wait(self.hostile.drip_interval):
                return
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()

    def _huge(self) -> None:
        handler = self.handler
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b'"' + b"x" * (64 * 1024 - 2) + b'"'
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        for _ in range(HUGE_BYTES // len(chunk)):
            if self.hostile._stopping.is_set():
                return
            handler.wfile.write(frame)
        handler.wfile.write(b"0\r\n\r\n")


class _Raw:
    """JSON text sent as it is: NaN, Infinity and 1e309 as Isometric might write them."""

    def __init__(self, text: str) -> None:
        self.text = text


def _with_raw(value: object) -> str:
    if isinstance(value, _Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_with_raw(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_with_raw(item) for item in value) + "]"
    return json.dumps(value)


def _page(nodes: list[Any], start: int, end: int, total: int) -> dict[str, object]:
    return {
        "nodes": nodes,
        "page_info": {
            "has_previous_page": start > 0,
            "has_next_page": end < total,
            "start_cursor": f"cursor-{start}" if nodes else None,
            "end_cursor": f"cursor-{end}" if nodes else None,
        },
        "total_count": total,
    }
