"""HTTP/1.1 with keep-alive on the standard library's threaded server: a thread a connection.

The API and the control endpoint are answered by the functions the server is given; this module
only speaks HTTP, and carries out the faults that are about the connection itself.
"""

import contextlib
import json
import logging
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from isometric.emulator.api import API_PREFIX, Drop, Request, Response
from isometric.emulator.control import CONTROL_PREFIX

log = logging.getLogger(__name__)


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        *,
        answer_api: Callable[[Request], Response | Drop],
        answer_control: Callable[[str, str, bytes], Response],
        connection_opened: Callable[[], None],
    ) -> None:
        self.answer_api = answer_api
        self.answer_control = answer_control
        self._connection_opened = connection_opened
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        self._connection_opened()
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End kept-alive connections too, so that their threads finish when the server stops."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exception(), ConnectionError):
            log.debug("client %s went away", client_address)
        else:
            log.exception("error while serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client can reuse one connection
    server_version = "isometric-emulator"
    disable_nagle_algorithm = True
    wbufsize = -1  # headers and body leave in one write
    server: HttpServer

    arrived = 0.0

    def parse_request(self) -> bool:
        self.arrived = time.monotonic()  # the request line is in; its headers are parsed next
        return super().parse_request()

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _handle(self) -> None:
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._send(Response(400, {"detail": "Invalid Content-Length"}))
            return
        url = urlsplit(self.path)
        if url.path.startswith(CONTROL_PREFIX):
            self._send(self.server.answer_control(self.command, url.path, body))
        elif url.path.startswith(API_PREFIX + "/"):
            self._answer(self._api_request(url.path, url.query, body))
        else:
            self._send(Response(404, {"detail": "Not Found"}))

    def _api_request(self, path: str, query: str, body: bytes) -> Request:
        # Like FastAPI, the last of repeated query parameters wins.
        parameters = parse_qs(query, keep_blank_values=True)
        return Request(
            method=self.command,
            path=path.removeprefix(API_PREFIX),
            query={name: values[-1] for name, values in parameters.items()},
            client_secret=self.headers.get("X-Client-Secret"),
            authorization=self.headers.get("Authorization"),
            body=body,
            arrived=self.arrived,
        )

    def _answer(self, request: Request) -> None:
        outcome = self.server.answer_api(request)
        if outcome is Drop.RESET:
            self._reset_connection()
        elif outcome is Drop.LOST:
            self.close_connection = True
        else:
            self._send(outcome)

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length", 0))
        except ValueError:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, response: Response) -> None:
        payload = b"" if response.body is None else json.dumps(response.body).encode()
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status != 204:  # a 204 has neither body nor Content-Length
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _reset_connection(self) -> None:
        # A zero linger time makes closing send RST rather than FIN: a reset, not a clean close.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True
