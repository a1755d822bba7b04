"""Relay paging: first/after forwards, last/before backwards, over a list kept in key order.

A cursor names a position by its sort key, not by its index, so pages stay free of gaps and
repeats while batches are added or deleted. Cursors are signed: one that was tampered with, made
up, taken from another list or issued by an earlier run of the emulator is refused.
"""

import base64
import binascii
import hashlib
import hmac
import json
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from isometric.emulator.validation import Problems, check_page_size, check_string

type Key = tuple[str, str]  # (the value the list is sorted by, the id)

DEFAULT_PAGE_SIZE = 10
_MAC_LENGTH = 12


class Cursors:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_MAC_LENGTH]

    def encode(self, listing: str, key: Key) -> str:
        payload = json.dumps([listing, *key], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(payload + self._mac(payload)).rstrip(b"=").decode()

    def decode(self, listing: str, cursor: str) -> Key | None:
        """The key the cursor points at, or None when the cursor is not one of ours."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            return None
        payload, mac = raw[:-_MAC_LENGTH], raw[-_MAC_LENGTH:]
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        decoded = json.loads(payload)
        if decoded[0] != listing:
            return None
        return decoded[1], decoded[2]


@dataclass(frozen=True)
class PageRequest:
    size: int
    backward: bool
    cursor: Key | None


@dataclass(frozen=True)
class PageSlice:
    keys: list[Key]
    has_previous_page: bool
    has_next_page: bool
    total_count: int


def read_page_request(
    problems: Problems, query: Mapping[str, str], listing: str, cursors: Cursors
) -> PageRequest | None:
    """The paging parameters, or None with 422 problems. Forwards and backwards do not mix."""
    forward = [name for name in ("first", "after") if name in query]
    backward = [name for name in ("last", "before") if name in query]
    if forward and backward:
        message = f"{backward[0]} cannot be combined with {forward[0]}"
        problems.add(("query", backward[0]), "value_error", message, query[backward[0]])
        return None
    size_name, cursor_name = ("last", "before") if backward else ("first", "after")
    size: int | None = DEFAULT_PAGE_SIZE
    if size_name in query:
        size = check_page_size(problems, size_name, query[size_name])
    cursor = None
    if cursor_name in query:
        cursor = _read_cursor(problems, cursor_name, query[cursor_name], listing, cursors)
    if problems or size is None:
        return None
    return PageRequest(size=size, backward=bool(backward), cursor=cursor)


def _read_cursor(
    problems: Problems, name: str, value: str, listing: str, cursors: Cursors
) -> Key | None:
    loc = ("query", name)
    if check_string(problems, loc, value, min_length=1) is None:
        return None
    key = cursors.decode(listing, value)
    if key is None:
        problems.add(loc, "value_error", "Invalid cursor", value)
    return key


def slice_page(keys: Sequence[Key], request: PageRequest) -> PageSlice:
    """The page of `keys` (sorted) that the request asks for."""
    if request.backward:
        end = len(keys) if request.cursor is None else bisect_left(keys, request.cursor)
        start = max(0, end - request.size)
    else:
        start = 0 if request.cursor is None else bisect_right(keys, request.cursor)
        end = min(len(keys), start + request.size)
    return PageSlice(
        keys=list(keys[start:end]),
        has_previous_page=start > 0,
        has_next_page=end < len(keys),
        total_count=len(keys),
    )
