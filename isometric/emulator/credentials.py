"""The emulator's credentials and the check every API request goes through."""

import base64
import binascii
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_CLIENT_SECRET = "emulator-client-secret"
TOKEN_LIFETIME = timedelta(days=365)


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_segment(value: Mapping[str, object]) -> str:
    return _base64url(json.dumps(value, separators=(",", ":")).encode())


def make_access_token(organisation_id: str, now: datetime) -> str:
    """A JWT shaped like Isometric's, expiring in a year. The signature is random: nobody checks it
    but the emulator, which compares the whole token."""
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {
        "iss": "isometric-emulator",
        "sub": "emulator",
        "org": organisation_id,
        "iat": int(now.timestamp()),
        "exp": int((now + TOKEN_LIFETIME).timestamp()),
    }
    signature = _base64url(secrets.token_bytes(32))
    return f"{_json_segment(header)}.{_json_segment(claims)}.{signature}"


def _looks_like_jwt(token: str) -> bool:
    parts = token.split(".")
    if len(parts) != 3:
        return False
    try:
        decoded = [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in parts[:2]]
        return all(isinstance(json.loads(segment), dict) for segment in decoded)
    except (binascii.Error, ValueError):
        return False


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class Refusal:
    status: int
    detail: str


def check_credentials(
    client_secret: str | None,
    authorization: str | None,
    *,
    expected_secret: str,
    expected_token: str,
) -> Refusal | None:
    """401 for a missing or wrong client secret and a missing or unreadable bearer token;
    403 for a well-formed token that is not this organisation's."""
    if client_secret is None or not _same(client_secret, expected_secret):
        return Refusal(401, "Invalid or missing client secret")
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return Refusal(401, "Not authenticated")
    if _same(token, expected_token):
        return None
    if _looks_like_jwt(token):
        return Refusal(403, "Access token is not valid for this organisation")
    return Refusal(401, "Invalid access token")
