"""Canvas tokens: who may read and change which canvases (sans-I/O, no clock, no sockets).

A token is ``v1.<claims>.<signature>``: the claims (JSON, base64url) name the canvases it grants and
when it expires; the signature is HMAC-SHA256 over them with the server's secret. The server keeps no
token table, so any holder of the secret (an operator, ``bulkbench run``) can mint tokens, and a
token cannot be widened without the secret. ``"*"`` grants every canvas (operators, verification).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

import orjson

from bulkbench.protocol import ErrorCode, ProtocolError

TOKEN_VERSION = "v1"
ALL_CANVASES = "*"
MIN_SECRET_BYTES = 16
"""A shorter secret is refused at start: it could be guessed."""
DEFAULT_TTL_S = 3600.0
"""Lifetime of a minted token unless told otherwise (longer than any bounded run)."""
MAX_TOKEN_CHARS = 4096
"""A longer token is refused before it is decoded."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid token allows."""

    canvases: frozenset[str]
    expires_at: float

    def allows(self, canvas_id: str) -> bool:
        return ALL_CANVASES in self.canvases or canvas_id in self.canvases


class TokenAuthority:
    """Mints and checks tokens with one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"auth secret must be at least {MIN_SECRET_BYTES} bytes (got {len(secret)})")
        self._secret = secret

    def _sign(self, claims: str) -> str:
        return _b64(hmac.new(self._secret, claims.encode("ascii"), hashlib.sha256).digest())

    def mint(self, canvases: list[str] | tuple[str, ...], expires_at: float) -> str:
        claims = _b64(orjson.dumps({"c": list(canvases), "exp": expires_at}))
        return f"{TOKEN_VERSION}.{claims}.{self._sign(claims)}"

    def check(self, token: str | None, now: float) -> Grant:
        """The token's grant, or ``ProtocolError(UNAUTHORIZED)`` saying what is wrong with it."""
        if not token:
            raise ProtocolError(ErrorCode.UNAUTHORIZED, "a token is required (Authorization: Bearer TOKEN)")
        if len(token) > MAX_TOKEN_CHARS:
            raise ProtocolError(ErrorCode.UNAUTHORIZED, f"token longer than {MAX_TOKEN_CHARS} characters")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != TOKEN_VERSION:
            raise ProtocolError(ErrorCode.UNAUTHORIZED, "malformed token")
        _, claims, signature = parts
        if not hmac.compare_digest(signature, self._sign(claims)):
            raise ProtocolError(ErrorCode.UNAUTHORIZED, "bad token signature")
        try:
            data = orjson.loads(_unb64(claims))
            canvases, expires_at = data["c"], float(data["exp"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ProtocolError(ErrorCode.UNAUTHORIZED, "malformed token claims") from exc
        if not isinstance(canvases, list) or not all(isinstance(c, str) for c in canvases):
            raise ProtocolError(ErrorCode.UNAUTHORIZED, "malformed token claims")
        if expires_at <= now:
            raise ProtocolError(ErrorCode.UNAUTHORIZED, "token expired")
        return Grant(frozenset(canvases), expires_at)

    def authorize(self, token: str | None, canvas_id: str, now: float) -> Grant:
        """The grant if it covers ``canvas_id``; else UNAUTHORIZED (no valid token) or FORBIDDEN."""
        grant = self.check(token, now)
        if not grant.allows(canvas_id):
            raise ProtocolError(ErrorCode.FORBIDDEN, f"token does not grant canvas {canvas_id!r}")
        return grant


def bearer_token(authorization: str | None, query_token: str | None) -> str | None:
    """The token from ``Authorization: Bearer`` or, where a browser cannot set headers, ``?token=``."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return query_token or None


def read_secret(path: str) -> bytes:
    """The secret file's bytes, stripped of surrounding whitespace."""
    with open(path, "rb") as handle:
        return handle.read().strip()
