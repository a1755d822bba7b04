"""The Isometric endpoints the portal uses, answered as the contract says (under /mrv/v0)."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum

from isometric.emulator.credentials import check_credentials
from isometric.emulator.faults import Settings
from isometric.emulator.paging import Cursors, PageSlice, read_page_request
from isometric.emulator.stats import Stats
from isometric.emulator.store import DeleteRefused, DuplicateSupplierReference, Record, Store
from isometric.emulator.validation import Problems, check_string, read_new_batch

API_PREFIX = "/mrv/v0"

_METHODS = {
    "/production_batches": ("GET", "POST"),
    "/production_batches/{id}": ("GET", "DELETE"),
    "/feedstock_types": ("GET",),
    "/organisation": ("GET",),
}
_DUPLICATE = "A production batch with this supplier_reference_id already exists"


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # below API_PREFIX, e.g. "/production_batches"
    query: Mapping[str, str]
    client_secret: str | None
    authorization: str | None
    body: bytes
    arrived: float  # time.monotonic() when the request line came in


class Drop(Enum):
    """No answer at all: the connection is closed (LOST) or reset (RESET) instead."""

    LOST = "lost"
    RESET = "reset"


@dataclass(frozen=True)
class Response:
    status: int
    body: object = None
    headers: Mapping[str, str] = field(default_factory=dict)


_METHOD_NOT_ALLOWED = Response(405, {"detail": "Method Not Allowed"})


def _template(path: str) -> tuple[str, str | None] | None:
    """The route the path matches and the id in it, or None."""
    if path in _METHODS:
        return path, None
    parent, _, item_id = path.rpartition("/")
    if parent == "/production_batches" and item_id:
        return "/production_batches/{id}", item_id
    return None


def route_name(method: str, path: str) -> str:
    """The name requests are counted under, e.g. "GET /production_batches/{id}"."""
    matched = _template(path)
    return "unknown" if matched is None else f"{method} {matched[0]}"


def _invalid(problems: Problems) -> Response:
    return Response(422, {"detail": problems.detail})


class Api:
    def __init__(self, store: Store, stats: Stats, cursors: Cursors, client_secret: str) -> None:
        self._store = store
        self._stats = stats
        self._cursors = cursors
        self._client_secret = client_secret

    def handle(self, request: Request, settings: Settings) -> Response:
        matched = _template(request.path)
        if matched is None:
            return Response(404, {"detail": "Not Found"})
        template, item_id = matched
        if request.method not in _METHODS[template]:
            return _METHOD_NOT_ALLOWED
        refusal = check_credentials(
            request.client_secret,
            request.authorization,
            expected_secret=self._client_secret,
            expected_token=self._store.access_token,
        )
        if refusal is not None:
            headers = {"WWW-Authenticate": "Bearer"} if refusal.status == 401 else {}
            return Response(refusal.status, {"detail": refusal.detail}, headers)
        if item_id is not None:
            return self._one_batch(request.method, item_id)
        match request.method, template:
            case "GET", "/production_batches":
                return self._list_batches(request.query, settings)
            case "POST", "/production_batches":
                return self._create_batch(request.body, settings)
            case "GET", "/feedstock_types":
                return self._list_feedstock_types(request.query)
            case "GET", "/organisation":
                return Response(200, self._store.organisation)
            case _:
                return _METHOD_NOT_ALLOWED

    def _one_batch(self, method: str, batch_id: str) -> Response:
        problems = Problems()
        if check_string(problems, ("path", "id"), batch_id, 20, 37) is None:
            return _invalid(problems)
        if method == "DELETE":
            return self._delete_batch(batch_id)
        batch = self._store.get(batch_id)
        return _batch_not_found() if batch is None else Response(200, batch)

    def _delete_batch(self, batch_id: str) -> Response:
        try:
            deleted = self._store.delete(batch_id, honour_refusal=True)
        except DeleteRefused as refusal:
            problems = Problems()
            problems.add(("path", "id"), "value_error", str(refusal), batch_id)
            return _invalid(problems)
        return Response(204) if deleted else _batch_not_found()

    def _create_batch(self, body: bytes, settings: Settings) -> Response:
        batch, problems = read_new_batch(body)
        if batch is None:
            return _invalid(problems)
        problems = self._store.unknown_ids(batch)
        if problems:
            return _invalid(problems)
        try:
            record = self._store.create(
                batch,
                uploaded_at=datetime.now(UTC),
                reuse_deleted_references=settings.reuse_deleted_references,
            )
        except DuplicateSupplierReference:
            return _duplicate(batch.supplier_reference_id, settings.duplicate_status)
        self._stats.created(batch.supplier_reference_id)
        return Response(200, record)

    def _list_batches(self, query: Mapping[str, str], settings: Settings) -> Response:
        problems = Problems()
        page_request = read_page_request(problems, query, "production_batches", self._cursors)
        reference = _reference_filter(problems, query)
        if page_request is None or problems:
            return _invalid(problems)
        if settings.ignore_supplier_reference_filter:
            reference = None
        nodes, page = self._store.page_of_batches(page_request, reference)
        return Response(200, self._page("production_batches", nodes, page))

    def _list_feedstock_types(self, query: Mapping[str, str]) -> Response:
        problems = Problems()
        page_request = read_page_request(problems, query, "feedstock_types", self._cursors)
        reference = _reference_filter(problems, query)
        if page_request is None or problems:
            return _invalid(problems)
        nodes, page = self._store.page_of_feedstock_types(page_request, reference)
        return Response(200, self._page("feedstock_types", nodes, page))

    def _page(self, listing: str, nodes: list[Record], page: PageSlice) -> dict[str, object]:
        start_cursor = end_cursor = None
        if page.keys:
            start_cursor = self._cursors.encode(listing, page.keys[0])
            end_cursor = self._cursors.encode(listing, page.keys[-1])
        return {
            "nodes": nodes,
            "page_info": {
                "has_previous_page": page.has_previous_page,
                "start_cursor": start_cursor,
                "has_next_page": page.has_next_page,
                "end_cursor": end_cursor,
            },
            "total_count": page.total_count,
        }


def _reference_filter(problems: Problems, query: Mapping[str, str]) -> str | None:
    if "supplier_reference_id" not in query:
        return None
    value = query["supplier_reference_id"]
    return check_string(problems, ("query", "supplier_reference_id"), value, 1, 100)


def _batch_not_found() -> Response:
    return Response(404, {"detail": "Production batch not found"})


def _duplicate(supplier_reference_id: str, status: int) -> Response:
    if status == 409:
        return Response(409, {"detail": _DUPLICATE})
    problems = Problems()
    loc = ("body", "supplier_reference_id")
    problems.add(loc, "value_error", _DUPLICATE, supplier_reference_id)
    return _invalid(problems)
