"""A requests adapter whose responses are read by a deadline, however slowly the server sends.

requests' read timeout bounds each socket read, so a server sending one byte a second keeps a call
alive for as long as it likes. Under `deadline(seconds)`, every read of a response's status line,
headers and body waits only for the time left, and fails with TimeoutError once it has passed;
urllib3 reports that as a read timeout. No thread is added.
"""

import io
import socket
import time
from collections.abc import Buffer, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from http.client import HTTPResponse

from requests.adapters import HTTPAdapter
from urllib3 import PoolManager, ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_ends_at: ContextVar[float | None] = ContextVar("isometric_deadline", default=None)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Responses received inside the block must arrive within `seconds` from now."""
    token = _ends_at.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _ends_at.reset(token)


class _DeadlineSocketReader(io.RawIOBase):
    """Reads the socket, waiting at most the read timeout and never past the deadline."""

    def __init__(self, sock: socket.socket, ends_at: float) -> None:
        self._sock = sock
        self._ends_at = ends_at
        self._read_timeout = sock.gettimeout()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer) -> int:
        left = self._ends_at - time.monotonic()
        if left <= 0:
            raise TimeoutError("the deadline passed")
        wait = left if self._read_timeout is None else min(left, self._read_timeout)
        self._sock.settimeout(wait)
        try:
            return self._sock.recv_into(memoryview(buffer))
        finally:
            # The connection may be reused: its next request starts from the usual timeout.
            self._sock.settimeout(self._read_timeout)


class _DeadlineResponse(HTTPResponse):
    def __init__(
        self,
        sock: socket.socket,
        debuglevel: int = 0,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(sock, debuglevel, method, url)
        ends_at = _ends_at.get()
        if ends_at is not None:
            self.fp.close()
            self.fp = io.BufferedReader(_DeadlineSocketReader(sock, ends_at))


class _HTTPConnection(HTTPConnection):
    response_class = _DeadlineResponse


class _HTTPSConnection(HTTPSConnection):
    response_class = _DeadlineResponse


class _HTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOL_CLASSES: dict[str, type[HTTPConnectionPool]] = {
    "http": _HTTPConnectionPool,
    "https": _HTTPSConnectionPool,
}


class DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections honour `deadline()`, directly or through an HTTP proxy."""

    def init_poolmanager(self, *args: object, **kwargs: object) -> None:
        super().init_poolmanager(*args, **kwargs)  # type: ignore[arg-type]
        _use_deadline_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: object) -> PoolManager:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):
            _use_deadline_pools(manager)
        return manager


def _use_deadline_pools(manager: PoolManager) -> None:
    manager.pool_classes_by_scheme = _POOL_CLASSES
