"""The emulator: the state, behaviour and statistics behind the HTTP server, and their controls."""

import math
import random
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from email.utils import formatdate
from functools import partial
from pathlib import Path
from typing import Self

from isometric.emulator.api import API_PREFIX, Api, Drop, Request, Response, route_name
from isometric.emulator.control import handle_control
from isometric.emulator.credentials import DEFAULT_CLIENT_SECRET
from isometric.emulator.faults import Fault, FaultPlan, RateLimiter, Settings
from isometric.emulator.formats import new_id
from isometric.emulator.http_server import HttpServer
from isometric.emulator.paging import Cursors
from isometric.emulator.sample_data import random_batch
from isometric.emulator.stats import Stats
from isometric.emulator.store import DEFAULT_DELETE_REFUSAL, Record, Store


class Emulator:
    """A local stand-in for the Isometric API over real HTTP. See the package docstring."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        access_token: str | None = None,
        seed: int = 0,
        state_file: str | Path | None = None,
        facility_ids: Iterable[str] = (),
        feedstock_type_ids: Iterable[str] = (),
        random_seed: int | None = None,
    ) -> None:
        self.host = host
        self.client_secret = client_secret
        self._requested_port = port
        self._seed = seed
        self._random_seed = random_seed
        self._random = random.Random(random_seed)
        self._store, is_new = Store.open(Path(state_file) if state_file else None)
        if access_token is not None:
            self._store.set_access_token(access_token)
        for facility_id in facility_ids:
            self.register_facility(facility_id)
        for feedstock_type_id in feedstock_type_ids:
            self.register_feedstock_type(feedstock_type_id)
        self._settings = Settings()
        self._settings_lock = threading.Lock()
        self._faults = FaultPlan(random_seed)
        self._limiter = RateLimiter()
        self._stats = Stats()
        # A new cursor secret per run: cursors from an earlier run are refused, as stale ones.
        cursors = Cursors(secrets.token_bytes(16))
        self._api = Api(self._store, self._stats, cursors, client_secret)
        self._server: HttpServer | None = None
        self._thread: threading.Thread | None = None
        if is_new:
            self.add_production_batches(seed)

    # Running

    def start(self) -> Self:
        """Listen and serve in a background thread."""
        self._server = HttpServer(
            (self.host, self._requested_port),
            answer_api=self._serve_api,
            answer_control=partial(handle_control, self),
            connection_opened=self._stats.connection_opened,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="isometric-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        port: int = self._server.server_address[1]
        return port

    @property
    def url(self) -> str:
        """The root, e.g. http://127.0.0.1:8765 (the control endpoint is under /_emulator/)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What the client is given, e.g. http://127.0.0.1:8765/mrv/v0."""
        return self.url + API_PREFIX

    # What it holds

    @property
    def access_token(self) -> str:
        return self._store.access_token

    @property
    def organisation(self) -> Record:
        return self._store.organisation

    @property
    def facility_ids(self) -> list[str]:
        return [facility["id"] for facility in self._store.facilities()]

    @property
    def feedstock_type_ids(self) -> list[str]:
        return [feedstock_type["id"] for feedstock_type in self._store.feedstock_types()]

    def facilities(self) -> list[Record]:
        return self._store.facilities()

    def feedstock_types(self) -> list[Record]:
        return self._store.feedstock_types()

    def register_facility(self, facility_id: str | None = None, name: str | None = None) -> Record:
        """Make a facility known, so batches may name it (facilities exist only in Certify's UI)."""
        facility_id = facility_id or new_id("fcl")
        _check_id(facility_id)
        return self._store.add_facility(facility_id, name or f"Facility {facility_id}")

    def register_feedstock_type(
        self, feedstock_type_id: str | None = None, name: str | None = None
    ) -> Record:
        feedstock_type_id = feedstock_type_id or new_id("ftt")
        _check_id(feedstock_type_id)
        name = name or f"Feedstock {feedstock_type_id}"
        return self._store.add_feedstock_type(feedstock_type_id, name)

    def production_batches(self) -> list[Record]:
        """Every stored batch as the API shows it, in list order."""
        return self._store.batches()

    def add_production_batches(self, count: int) -> list[Record]:
        """Store `count` plausible batches "created elsewhere" (not counted as created in stats)."""
        now = datetime.now(UTC)
        facility_ids, feedstock_type_ids = self.facility_ids, self.feedstock_type_ids
        batches = [
            random_batch(self._random, facility_ids, feedstock_type_ids, now) for _ in range(count)
        ]
        reuse = self._settings.reuse_deleted_references
        return self._store.create_many(batches, reuse_deleted_references=reuse)

    def delete_production_batch(self, batch_id: str) -> bool:
        """Delete as if from Certify's UI, even a batch the API refuses to delete; False when
        there was no such batch."""
        return self._store.delete(batch_id, honour_refusal=False)

    def refuse_deletion(self, batch_id: str, reason: str = DEFAULT_DELETE_REFUSAL) -> bool:
        """Make the API's DELETE of this batch answer 422 with `reason` (as when the batch is part
        of a removal), until allow_deletion or reset; False when there is no such batch."""
        return self._store.set_delete_refusal(batch_id, reason)

    def allow_deletion(self, batch_id: str) -> bool:
        """Undo refuse_deletion; False when there is no such batch."""
        return self._store.set_delete_refusal(batch_id, None)

    # Behaviour and what it saw

    def settings(self) -> dict[str, object]:
        return asdict(self._settings)

    def configure(self, **options: object) -> None:
        """Change behaviour: any Settings field, plus `random_seed` (reseeds the fault draws)
        and `next_faults` (fault names the next API requests get, in order, before any by chance).
        Nothing changes if any option is wrong (ValueError)."""
        next_faults = options.pop("next_faults", [])
        if not isinstance(next_faults, list | tuple):
            raise ValueError("next_faults must be a list of fault names")
        faults = [Fault(name) for name in next_faults]
        reseed = "random_seed" in options
        new_rate_limit = "rate_limit_rps" in options
        random_seed = options.pop("random_seed", None)
        if random_seed is not None and not isinstance(random_seed, int):
            raise ValueError("random_seed must be a whole number")
        with self._settings_lock:
            self._settings = self._settings.updated(options)
            if new_rate_limit:
                self._limiter = RateLimiter()  # a new limit starts with a full bucket
            if faults:
                self._faults.queue(faults)
            if reseed:
                self._faults.reseed(random_seed)

    def reset(self) -> None:
        """Back to the start: default settings, no queued faults, fault draws reseeded, stats
        cleared, and the batches (with their delete refusals and the references of deleted ones)
        replaced by `seed` fresh ones. Credentials, the organisation, facilities and feedstock
        types stay."""
        with self._settings_lock:
            self._settings = Settings()
            self._limiter = RateLimiter()
            self._faults.queue(())
            self._faults.reseed(self._random_seed)
        self._stats.clear()
        self._store.clear_batches()
        self.add_production_batches(self._seed)

    def stats(self) -> dict[str, object]:
        """Requests by route and outcome, batches created through the API by
        supplier_reference_id, and TCP connections accepted, since start or reset."""
        return self._stats.snapshot()

    # Serving the API

    def _serve_api(self, request: Request) -> Response | Drop:
        settings = self._settings
        outcome = self._outcome(request, settings)
        status = outcome.value if isinstance(outcome, Drop) else str(outcome.status)
        self._stats.request(route_name(request.method, request.path), status)
        _answer_after_latency(settings, request.arrived)
        return outcome

    def _outcome(self, request: Request, settings: Settings) -> Response | Drop:
        wait = self._limiter.wait_needed(settings.rate_limit_rps, time.monotonic())
        if wait:
            return _too_many_requests(math.ceil(wait), settings)
        fault = self._faults.next(settings)
        if fault is Fault.RESET:
            return Drop.RESET
        if fault is Fault.ERROR_500:
            return Response(500, {"detail": "Internal Server Error"})
        if fault is Fault.ERROR_503:
            headers = _retry_after(settings.retry_after_seconds, settings)
            return Response(503, {"detail": "Service Unavailable"}, headers)
        if fault is Fault.RATE_LIMITED:
            return _too_many_requests(settings.retry_after_seconds, settings)
        response = self._api.handle(request, settings)
        return Drop.LOST if fault is Fault.LOST_RESPONSE else response


def _check_id(item_id: str) -> None:
    if not 20 <= len(item_id) <= 37:
        raise ValueError(
            f"ids are 20 to 37 characters long, like fcl_1G8QT5ZAB1S0XSDW: {item_id!r}"
        )


_PRECISE_WAIT = 0.0005  # seconds


def _answer_after_latency(settings: Settings, arrived: float) -> None:
    """Latency is the emulated API's response time, its own handling included, as a client
    of the real API sees it."""
    jitter = random.uniform(-settings.jitter_ms, settings.jitter_ms)
    delay_ms = max(0.0, settings.latency_ms + jitter)
    due = arrived + delay_ms / 1000
    # time.sleep wakes a fraction of a millisecond late; the last stretch is waited out on the
    # clock so that clients see the latency configured, not more.
    remaining = due - time.monotonic()
    if remaining > _PRECISE_WAIT:
        time.sleep(remaining - _PRECISE_WAIT)
    while time.monotonic() < due:
        pass


def _retry_after(seconds: int, settings: Settings) -> dict[str, str]:
    if settings.retry_after_as_http_date:
        return {"Retry-After": formatdate(time.time() + seconds, usegmt=True)}
    return {"Retry-After": str(seconds)}


def _too_many_requests(seconds: int, settings: Settings) -> Response:
    return Response(429, {"detail": "Too Many Requests"}, _retry_after(seconds, settings))
