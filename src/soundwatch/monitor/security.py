"""Safety rules of ``soundwatch serve``: who may bind where, token checks, response headers."""

from __future__ import annotations

import hmac
import ipaddress
import socket
from typing import Any

from soundwatch.errors import ConfigError

__all__ = ["SecurityHeaders", "bearer_matches", "check_bind", "is_loopback"]

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
"""Headers added to every answer: no MIME sniffing, no framing, no referrer leaks."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) only reaches this machine.

    A name counts as loopback only when every address it resolves to is a loopback one;
    an unresolvable name does not.
    """
    text = host.strip().strip("[]")
    if not text:
        return False  # "" binds every interface
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(text, None)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(
        ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses)


def check_bind(host: str, token: str | None, allow_no_token: bool = False) -> None:
    """Refuse to serve a non-loopback address without a token, unless told explicitly.

    Args:
        host: The address ``serve`` listens on.
        token: The bearer token (``None``: requests are not authenticated).
        allow_no_token: ``--allow-no-token``: the user accepts an open service.

    Raises:
        ConfigError: ``host`` is reachable from other machines and there is no token.
    """
    if token or allow_no_token or is_loopback(host):
        return
    raise ConfigError("--host", f"{host} is reachable from other machines and no --token "
                      "is set: give --token (or SOUNDWATCH_TOKEN), listen on 127.0.0.1, "
                      "or pass --allow-no-token to serve it open")


def bearer_matches(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (constant-time compare).

    :func:`hmac.compare_digest` takes the same time wherever the first differing byte is,
    so the answer times leak nothing of the token.
    """
    scheme, _, given = (authorization or "").partition(" ")
    matches = hmac.compare_digest(given.strip().encode("utf-8", "replace"),
                                  token.encode("utf-8"))
    return scheme.lower() == "bearer" and matches


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every HTTP answer.

    A plain ASGI class: cheaper per request than ``BaseHTTPMiddleware``.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Pass the request on; add the headers to the answer's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", ())}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
