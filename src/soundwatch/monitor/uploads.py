"""Uploads to the service: the body-size limit, multipart parsing, the name a clip keeps."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soundwatch.monitor.service_error import ServiceError

__all__ = ["BodyLimit", "Upload", "multipart_upload", "upload_name"]


@dataclass
class Upload:
    """A request body kept as a file for :func:`soundwatch.audio.load`."""

    path: Path
    name: str


class BodyLimit:
    """ASGI middleware: refuse a request whose declared Content-Length is over the limit.

    Bodies without a Content-Length (chunked) are counted while they are read
    (``read_body``). A plain ASGI class: cheaper per request than ``BaseHTTPMiddleware``.
    """

    def __init__(self, app: Any, limit: int, on_refuse: Any) -> None:
        self.app = app
        self.limit = limit
        self.on_refuse = on_refuse

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Answer 400/413 for a bad or too large Content-Length, else pass the request on."""
        if scope["type"] == "http":
            for key, value in scope.get("headers", ()):
                if key == b"content-length":
                    text = value.decode("latin-1").strip()
                    if not text.isdigit():
                        await _send_error(send, 400, "Content-Length: not a number")
                        return
                    if int(text) > self.limit:
                        self.on_refuse.labels("too_large").inc()
                        await _send_error(send, 413, f"upload: {int(text)} bytes is over the "
                                          f"limit of {self.limit}")
                        return
                    break
        await self.app(scope, receive, send)


async def _send_error(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def upload_name(name: str) -> str:
    """The name an upload is recorded under: the sent file name, folders included.

    ``feed`` sends the path below the folder fed (``id_00/abnormal/00000000.wav``); the
    name never becomes an absolute path or climbs with ``..`` (it is only shown, never opened).
    """
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return "/".join(parts)[-255:] or "file"


def multipart_upload(new_path: Callable[[str], Path], body: bytes, ctype: str) -> Upload:
    """Parse a multipart body (already size-checked) and keep its ``file`` part as a file.

    ``new_path(suffix)`` gives the file to keep it in (the service's clip folder).
    """
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, options = parse_options_header(ctype)
    boundary = options.get(b"boundary")
    if not boundary:
        raise ServiceError(400, "multipart upload without a boundary")
    parts: list[dict[str, Any]] = []
    current: dict[str, Any] = {}

    def on_part_begin() -> None:
        current.clear()
        current.update({"headers": {}, "data": [], "field": b"", "value": b""})

    def on_header_field(data: bytes, start: int, end: int) -> None:
        current["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        current["value"] += data[start:end]

    def on_header_end() -> None:
        current["headers"][current["field"].lower()] = current["value"]
        current["field"], current["value"] = b"", b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        current["data"].append(data[start:end])

    def on_part_end() -> None:
        parts.append(dict(current))

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_part_data": on_part_data, "on_part_end": on_part_end})
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:  # python-multipart raises its own error types
        raise ServiceError(400, f"malformed multipart body ({exc})") from exc
    for part in parts:
        _, disp = parse_options_header(part["headers"].get(b"content-disposition", b""))
        if disp.get(b"name") == b"file":
            name = disp.get(b"filename", b"file").decode("utf-8", "replace") or "file"
            data = b"".join(part["data"])
            if not data:
                raise ServiceError(422, f"{name}: empty file (0 bytes)")
            suffix = Path(name).suffix.lower()
            path = new_path(suffix if suffix in {".wav", ".flac", ".ogg"} else ".wav")
            path.write_bytes(data)
            return Upload(path, upload_name(name))
    raise ServiceError(400, "multipart upload needs a 'file' field")
