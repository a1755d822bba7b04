"""Request validation as Isometric's FastAPI service does it, with pydantic's types and messages.

The rules are those of the published contract (CreateProductionBatchRequest, ScalarQuantity and
the paging parameters); unknown body fields are ignored, as pydantic does by default.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

type Loc = tuple[str | int, ...]

MAX_PAGE_SIZE = 50


class Problems:
    """FastAPI's 422 `detail` list, built one entry at a time."""

    def __init__(self) -> None:
        self.detail: list[dict[str, object]] = []

    def __bool__(self) -> bool:
        return bool(self.detail)

    def add(
        self, loc: Loc, kind: str, msg: str, given: object, ctx: Mapping[str, object] | None = None
    ) -> None:
        entry: dict[str, object] = {"type": kind, "loc": list(loc), "msg": msg, "input": given}
        if ctx:
            entry["ctx"] = dict(ctx)
        self.detail.append(entry)


@dataclass(frozen=True)
class NewBatch:
    """A CreateProductionBatchRequest that passed validation."""

    facility_id: str
    feedstock_type_ids: list[str]
    supplier_reference_id: str
    kind: str
    started_at: datetime
    ended_at: datetime
    mass: dict[str, object]
    display_name: str | None


def _characters(count: int) -> str:
    return "character" if count == 1 else "characters"


def check_string(
    problems: Problems, loc: Loc, value: object, min_length: int, max_length: int | None = None
) -> str | None:
    if not isinstance(value, str):
        problems.add(loc, "string_type", "Input should be a valid string", value)
    elif len(value) < min_length:
        message = f"String should have at least {min_length} {_characters(min_length)}"
        problems.add(loc, "string_too_short", message, value, {"min_length": min_length})
    elif max_length is not None and len(value) > max_length:
        message = f"String should have at most {max_length} {_characters(max_length)}"
        problems.add(loc, "string_too_long", message, value, {"max_length": max_length})
    else:
        return value
    return None


def check_page_size(problems: Problems, name: str, raw: str) -> int | None:
    loc = ("query", name)
    try:
        size = int(raw)
    except ValueError:
        message = "Input should be a valid integer, unable to parse string as an integer"
        problems.add(loc, "int_parsing", message, raw)
        return None
    if size <= 0:
        problems.add(loc, "greater_than", "Input should be greater than 0", raw, {"gt": 0})
    elif size > MAX_PAGE_SIZE:
        message = f"Input should be less than or equal to {MAX_PAGE_SIZE}"
        problems.add(loc, "less_than_equal", message, raw, {"le": MAX_PAGE_SIZE})
    else:
        return size
    return None


def _check_number(problems: Problems, loc: Loc, value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.add(loc, "float_type", "Input should be a valid number", value)
        return None
    return value


def _check_datetime(problems: Problems, loc: Loc, value: object) -> datetime | None:
    if not isinstance(value, str):
        problems.add(loc, "datetime_type", "Input should be a valid datetime", value)
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        problems.add(loc, "datetime_parsing", "Input should be a valid datetime", value)
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _check_feedstock_type_ids(problems: Problems, value: object) -> list[str] | None:
    loc: Loc = ("body", "feedstock_type_ids")
    if not isinstance(value, list):
        problems.add(loc, "list_type", "Input should be a valid list", value)
        return None
    checked = [
        check_string(problems, (*loc, index), item, 20, 37) for index, item in enumerate(value)
    ]
    return [item for item in checked if item is not None]


def _check_mass(problems: Problems, value: object) -> dict[str, object] | None:
    loc: Loc = ("body", "mass")
    if not isinstance(value, dict):
        message = "Input should be a valid dictionary or instance of ScalarQuantity"
        problems.add(loc, "model_type", message, value, {"class_name": "ScalarQuantity"})
        return None
    found = Problems()
    _require(found, loc, value, "magnitude", "unit")
    if found:
        problems.detail.extend(found.detail)
        return None
    magnitude = _check_number(found, (*loc, "magnitude"), value["magnitude"])
    unit = check_string(found, (*loc, "unit"), value["unit"], min_length=1)
    deviation = value.get("standard_deviation")
    if deviation is not None:
        deviation = _check_number(found, (*loc, "standard_deviation"), deviation)
    problems.detail.extend(found.detail)
    if found:
        return None
    return {"magnitude": magnitude, "unit": unit, "standard_deviation": deviation}


def _require(problems: Problems, loc: Loc, data: dict[str, object], *names: str) -> None:
    for name in names:
        if name not in data:
            problems.add((*loc, name), "missing", "Field required", data)


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _parse_body(raw: bytes, problems: Problems) -> dict[str, object] | None:
    if not raw:
        problems.add(("body",), "missing", "Field required", None)
        return None
    try:
        # NaN and Infinity are not JSON, though Python's parser accepts them.
        body = json.loads(raw, parse_constant=_refuse_constant)
    except ValueError as exc:
        position = getattr(exc, "pos", 0)
        problems.add(
            ("body", position), "json_invalid", "JSON decode error", {}, {"error": str(exc)}
        )
        return None
    if not isinstance(body, dict):
        message = "Input should be a valid dictionary or object to extract fields from"
        problems.add(("body",), "model_attributes_type", message, body)
        return None
    return body


REQUIRED_FIELDS = (
    "facility_id",
    "feedstock_type_ids",
    "supplier_reference_id",
    "kind",
    "started_at",
    "ended_at",
    "mass",
)


def _check_fields(problems: Problems, body: dict[str, object]) -> NewBatch | None:
    facility_id = check_string(problems, ("body", "facility_id"), body["facility_id"], 20, 37)
    feedstock_type_ids = _check_feedstock_type_ids(problems, body["feedstock_type_ids"])
    reference = check_string(
        problems, ("body", "supplier_reference_id"), body["supplier_reference_id"], 1, 100
    )
    if body["kind"] != "biochar":
        expected = {"expected": "'biochar'"}
        problems.add(("body", "kind"), "enum", "Input should be 'biochar'", body["kind"], expected)
    started_at = _check_datetime(problems, ("body", "started_at"), body["started_at"])
    ended_at = _check_datetime(problems, ("body", "ended_at"), body["ended_at"])
    mass = _check_mass(problems, body["mass"])
    display_name = body.get("display_name")
    if display_name is not None:
        display_name = check_string(problems, ("body", "display_name"), display_name, 1, 100)
    if (
        problems
        or facility_id is None
        or feedstock_type_ids is None
        or reference is None
        or started_at is None
        or ended_at is None
        or mass is None
    ):
        return None
    return NewBatch(
        facility_id=facility_id,
        feedstock_type_ids=feedstock_type_ids,
        supplier_reference_id=reference,
        kind="biochar",
        started_at=started_at,
        ended_at=ended_at,
        mass=mass,
        display_name=display_name,
    )


def read_new_batch(raw: bytes) -> tuple[NewBatch | None, Problems]:
    """The validated request, or None and the problems FastAPI would have answered 422 with."""
    problems = Problems()
    body = _parse_body(raw, problems)
    if body is None:
        return None, problems
    _require(problems, ("body",), body, *REQUIRED_FIELDS)
    if problems:
        return None, problems
    return _check_fields(problems, body), problems
