"""How badly the emulated Isometric behaves: latency, faults at given rates, a rate limit."""

import random
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any


class Fault(StrEnum):
    ERROR_500 = "error_500"
    ERROR_503 = "error_503"
    RATE_LIMITED = "rate_limited"
    # The request is handled (a batch is stored), then the connection closes without an answer.
    LOST_RESPONSE = "lost_response"
    # The connection is reset before anything is handled.
    RESET = "reset"


def _option[T](default: T, help_text: str, flag: str | None = None) -> T:
    """A setting with its help text, which the command line shows. `flag` replaces the flag
    made from the name (--latency-ms for latency_ms)."""
    return field(default=default, metadata={"help": help_text, "flag": flag})


@dataclass(frozen=True)
class Settings:
    latency_ms: float = _option(0.0, "delay before each API request is handled")
    jitter_ms: float = _option(0.0, "latency varies uniformly by up to this much either way")
    error_500_rate: float = _option(0.0, "share of API requests answered 500")
    error_503_rate: float = _option(0.0, "share of API requests answered 503 with Retry-After")
    rate_limited_rate: float = _option(0.0, "share of API requests answered 429 with Retry-After")
    lost_response_rate: float = _option(0.0, "share handled, then dropped without an answer")
    reset_rate: float = _option(0.0, "share whose connection is reset before they are handled")
    retry_after_seconds: int = _option(1, "the Retry-After sent with 429 and 503")
    retry_after_as_http_date: bool = _option(False, "send Retry-After as an HTTP date")
    rate_limit_rps: float = _option(0.0, "answer 429 above this many API requests a second; 0: off")
    duplicate_status: int = _option(409, "status for a duplicate supplier_reference_id: 409 or 422")
    ignore_supplier_reference_filter: bool = _option(
        False, "list every batch whatever supplier_reference_id asks for (as old API versions do)"
    )
    # The published spec leaves open whether a deleted batch's reference may be used again.
    reuse_deleted_references: bool = _option(
        True,
        "keep deleted batches' supplier_reference_id reserved: a new batch with one is refused"
        " as a duplicate",
        flag="--no-reference-reuse",
    )

    def __post_init__(self) -> None:
        for fault in Fault:
            if not 0 <= self.rate(fault) <= 1:
                raise ValueError(f"{fault}_rate must be between 0 and 1")
        for name in ("latency_ms", "jitter_ms", "retry_after_seconds", "rate_limit_rps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.duplicate_status not in (409, 422):
            raise ValueError("duplicate_status must be 409 or 422")

    def rate(self, fault: Fault) -> float:
        rate: float = getattr(self, f"{fault}_rate")
        return rate

    def updated(self, options: Mapping[str, object]) -> "Settings":
        """These settings with some changed; the values are checked as they come from JSON."""
        types = {option.name: type(option.default) for option in fields(self)}
        changes: dict[str, Any] = {}
        for name, value in options.items():
            if name not in types:
                raise ValueError(f"unknown option {name!r}")
            changes[name] = _converted(name, value, types[name])
        return replace(self, **changes)


def _converted(name: str, value: object, expected: type) -> object:
    wrong = ValueError(f"{name} must be {expected.__name__}, not {value!r}")
    # In Python a bool is an int, but true is no number of milliseconds.
    if isinstance(value, bool) and expected is not bool:
        raise wrong
    if expected is float and isinstance(value, int):
        return float(value)
    if not isinstance(value, expected):
        raise wrong
    return value


class FaultPlan:
    """Which fault, if any, the next API request gets: queued ones first, then by chance.

    One random draw per request, from a generator seeded with `random_seed`, so a run of requests
    meets the same faults every time.
    """

    def __init__(self, random_seed: int | None) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(random_seed)
        self._queued: deque[Fault] = deque()

    def reseed(self, random_seed: int | None) -> None:
        with self._lock:
            self._random.seed(random_seed)

    def queue(self, faults: Iterable[Fault]) -> None:
        with self._lock:
            self._queued = deque(faults)

    def next(self, settings: Settings) -> Fault | None:
        with self._lock:
            if self._queued:
                return self._queued.popleft()
            draw = self._random.random()
        threshold = 0.0
        for fault in Fault:
            threshold += settings.rate(fault)
            if draw < threshold:
                return fault
        return None


class RateLimiter:
    """A token bucket holding one second's worth of requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rate = 0.0
        self._tokens = 0.0
        self._updated = 0.0

    def wait_needed(self, rate: float, now: float) -> float:
        """0 when a request may go ahead now, else the seconds until one may."""
        if rate <= 0:
            return 0.0
        with self._lock:
            if rate != self._rate:
                self._rate, self._tokens, self._updated = rate, rate, now
            self._tokens = min(rate, self._tokens + (now - self._updated) * rate)
            self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / rate
