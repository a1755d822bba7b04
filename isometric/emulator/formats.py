"""How Isometric writes ids and timestamps."""

import secrets
from datetime import UTC, datetime

# Isometric's ids use Crockford's base32: digits and upper-case letters without I, L, O and U.
BASE32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def random_code(length: int) -> str:
    return "".join(secrets.choice(BASE32) for _ in range(length))


def new_id(prefix: str) -> str:
    """An id like `ptb_1GAFJ4C051S06E0Z`."""
    return f"{prefix}_{random_code(16)}"


def utc_timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with a fixed width, so that timestamps sort as text in time order."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
