"""What Isometric sends and receives, as small typed objects.

The `from_json` readers are tolerant: they ignore fields they do not know (Isometric adds fields
without notice), accept `feedstock_type_id` as well as `feedstock_type_ids`, default the fields the
portal can live without, and raise MalformedResponse, never KeyError or TypeError, for the rest.
Numbers are finite, timestamps are in UTC, and texts no longer than the contract allows. A page
keeps the nodes it can read and says which it could not.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from isometric.errors import MalformedResponse

MAX_NAME_LENGTH = 100  # display_name and supplier_reference_id, as the contract says
MAX_UNIT_LENGTH = 20  # no unit is longer; the portal stores units in 20 characters
MAX_ID_IN_REASON = 40


def _parse_timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
        # Isometric's timestamps are UTC even when they do not say so.
        moment = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    # A moment every time zone can show: the first and last years cannot be, in some.
    return moment if datetime.min.year < moment.year < datetime.max.year else None


class _Fields:
    """One JSON object being read, naming the object and the field in every error."""

    def __init__(self, data: object, what: str) -> None:
        if not isinstance(data, dict):
            raise MalformedResponse(f"{what} is not a JSON object")
        self._data: dict[str, object] = data
        self._what = what

    def _refuse(self, key: str, value: object, expected: str) -> MalformedResponse:
        if value is None:
            return MalformedResponse(f"{self._what} has no {key!r}")
        return MalformedResponse(f"{self._what}: {key!r} is not {expected}")

    def text(self, key: str, max_length: int | None = None) -> str:
        value = self._data.get(key)
        if not isinstance(value, str):
            raise self._refuse(key, value, "a string")
        if max_length is not None and len(value) > max_length:
            raise self._refuse(key, value, f"at most {max_length} characters")
        return value

    def optional_text(self, key: str, max_length: int | None = None) -> str | None:
        return None if self._data.get(key) is None else self.text(key, max_length)

    def number(self, key: str) -> float:
        value = self._data.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if math.isfinite(number):
                return number
        raise self._refuse(key, value, "a finite number")

    def optional_number(self, key: str) -> float | None:
        return None if self._data.get(key) is None else self.number(key)

    def timestamp(self, key: str) -> datetime:
        value = self._data.get(key)
        parsed = _parse_timestamp(value)
        if parsed is None:
            raise self._refuse(key, value, "an ISO 8601 timestamp")
        return parsed

    def optional_timestamp(self, key: str) -> datetime | None:
        return None if self._data.get(key) is None else self.timestamp(key)

    def flag(self, key: str) -> bool:
        value = self._data.get(key)
        if isinstance(value, bool):
            return value
        raise self._refuse(key, value, "true or false")

    def optional_count(self, key: str) -> int | None:
        value = self._data.get(key)
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise self._refuse(key, value, "an integer")

    def array(self, key: str) -> list[object]:
        value = self._data.get(key)
        if isinstance(value, list):
            return value
        raise self._refuse(key, value, "a list")

    def child(self, key: str) -> "_Fields":
        value = self._data.get(key)
        if value is None:
            raise self._refuse(key, value, "an object")
        return _Fields(value, f"{self._what}: {key}")

    def feedstock_type_ids(self) -> tuple[str, ...]:
        value = self._data.get("feedstock_type_ids", self._data.get("feedstock_type_id"))
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._refuse("feedstock_type_ids", value, "a list of ids")
        return tuple(value)


def _utc_iso(value: datetime, name: str) -> str:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Mass:
    magnitude: float
    unit: str
    standard_deviation: float | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "magnitude": self.magnitude,
            "unit": self.unit,
            "standard_deviation": self.standard_deviation,
        }


def _read_mass(fields: _Fields) -> Mass:
    return Mass(
        magnitude=fields.number("magnitude"),
        unit=fields.text("unit", MAX_UNIT_LENGTH),
        standard_deviation=fields.optional_number("standard_deviation"),
    )


@dataclass(frozen=True)
class ProductionBatch:
    id: str
    facility_id: str
    feedstock_type_ids: tuple[str, ...]
    supplier_reference_id: str | None
    kind: str | None
    started_at: datetime
    ended_at: datetime
    uploaded_at: datetime | None
    display_name: str | None
    mass: Mass

    @classmethod
    def from_json(cls, data: object) -> "ProductionBatch":
        fields = _Fields(data, "production batch")
        return cls(
            id=fields.text("id"),
            facility_id=fields.text("facility_id"),
            feedstock_type_ids=fields.feedstock_type_ids(),
            supplier_reference_id=fields.optional_text("supplier_reference_id", MAX_NAME_LENGTH),
            kind=fields.optional_text("kind"),
            started_at=fields.timestamp("started_at"),
            ended_at=fields.timestamp("ended_at"),
            uploaded_at=fields.optional_timestamp("uploaded_at"),
            display_name=fields.optional_text("display_name", MAX_NAME_LENGTH),
            mass=_read_mass(fields.child("mass")),
        )


@dataclass(frozen=True)
class NewProductionBatch:
    """The body of POST /production_batches. Leave display_name None to let Isometric name it."""

    facility_id: str
    feedstock_type_ids: Sequence[str]
    supplier_reference_id: str
    started_at: datetime
    ended_at: datetime
    mass: Mass
    display_name: str | None = None
    kind: str = "biochar"

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "facility_id": self.facility_id,
            "feedstock_type_ids": list(self.feedstock_type_ids),
            "supplier_reference_id": self.supplier_reference_id,
            "kind": self.kind,
            "started_at": _utc_iso(self.started_at, "started_at"),
            "ended_at": _utc_iso(self.ended_at, "ended_at"),
            "mass": self.mass.to_json(),
        }
        if self.display_name is not None:
            body["display_name"] = self.display_name
        return body


@dataclass(frozen=True)
class FeedstockType:
    id: str
    name: str
    supplier_reference_id: str | None

    @classmethod
    def from_json(cls, data: object) -> "FeedstockType":
        fields = _Fields(data, "feedstock type")
        return cls(
            id=fields.text("id"),
            name=fields.text("name"),
            supplier_reference_id=fields.optional_text("supplier_reference_id"),
        )


@dataclass(frozen=True)
class Organisation:
    id: str
    name: str

    @classmethod
    def from_json(cls, data: object) -> "Organisation":
        fields = _Fields(data, "organisation")
        return cls(id=fields.text("id"), name=fields.text("name"))


@dataclass(frozen=True)
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@dataclass(frozen=True)
class Page[T]:
    """A page of nodes. `unreadable` says why each node that could not be read was left out."""

    nodes: list[T]
    page_info: PageInfo
    total_count: int | None
    unreadable: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: object, read_node: Callable[[object], T]) -> "Page[T]":
        fields = _Fields(data, "page")
        info = fields.child("page_info")
        nodes: list[T] = []
        unreadable: list[str] = []
        for position, node in enumerate(fields.array("nodes"), start=1):
            try:
                nodes.append(read_node(node))
            except MalformedResponse as exc:
                unreadable.append(f"{_node_name(node, position)}: {exc}")
        return cls(
            nodes=nodes,
            unreadable=tuple(unreadable),
            page_info=PageInfo(
                has_next_page=info.flag("has_next_page"),
                has_previous_page=info.flag("has_previous_page"),
                start_cursor=info.optional_text("start_cursor"),
                end_cursor=info.optional_text("end_cursor"),
            ),
            total_count=fields.optional_count("total_count"),
        )


def _node_name(node: object, position: int) -> str:
    node_id = node.get("id") if isinstance(node, dict) else None
    if isinstance(node_id, str):
        return repr(node_id[:MAX_ID_IN_REASON])
    return f"node {position}"
