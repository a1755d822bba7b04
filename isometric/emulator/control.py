"""The control endpoint under /_emulator/, for tests and demos. It needs no credentials."""

import json
from typing import TYPE_CHECKING

from isometric.emulator.api import Response
from isometric.emulator.store import DEFAULT_DELETE_REFUSAL

if TYPE_CHECKING:
    from isometric.emulator.server import Emulator

CONTROL_PREFIX = "/_emulator/"

_NO_SUCH_BATCH = Response(404, {"detail": "No such batch"})


def handle_control(emulator: "Emulator", method: str, path: str, body: bytes) -> Response:
    try:
        options = json.loads(body) if body else {}
    except ValueError:
        return Response(400, {"detail": "The body is not JSON"})
    if not isinstance(options, dict):
        return Response(400, {"detail": "The body must be a JSON object"})
    try:
        return _route(emulator, method, path.removeprefix(CONTROL_PREFIX), options)
    except (ValueError, TypeError) as exc:
        return Response(400, {"detail": str(exc)})


def _route(emulator: "Emulator", method: str, path: str, options: dict[str, object]) -> Response:
    match method, path.split("/"):
        case "GET", ["stats"]:
            return Response(200, emulator.stats())
        case "GET", ["config"]:
            return Response(200, emulator.settings())
        case "POST", ["config"]:
            emulator.configure(**options)
            return Response(200, emulator.settings())
        case "POST", ["reset"]:
            emulator.reset()
            return Response(200, {"status": "reset"})
        case "POST", ["seed"]:
            batches = emulator.add_production_batches(_count(options))
            return Response(200, {"production_batches": batches})
        case "POST", ["facilities"]:
            name = _optional_text(options, "name")
            facility = emulator.register_facility(_optional_text(options, "id"), name)
            return Response(200, facility)
        case "DELETE", ["production_batches", batch_id]:
            deleted = emulator.delete_production_batch(batch_id)
            return Response(204) if deleted else _NO_SUCH_BATCH
        case "PUT", ["production_batches", batch_id, "delete_refusal"]:
            reason = _optional_text(options, "reason") or DEFAULT_DELETE_REFUSAL
            refused = emulator.refuse_deletion(batch_id, reason)
            return Response(200, {"id": batch_id, "reason": reason}) if refused else _NO_SUCH_BATCH
        case "DELETE", ["production_batches", batch_id, "delete_refusal"]:
            allowed = emulator.allow_deletion(batch_id)
            return Response(204) if allowed else _NO_SUCH_BATCH
        case _:
            return Response(404, {"detail": "Not Found"})


def _count(options: dict[str, object]) -> int:
    count = options.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError("count must be a whole number")
    return count


def _optional_text(options: dict[str, object], name: str) -> str | None:
    value = options.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value
