"""``soundwatch feed``: post a folder's clips to a running service (urllib: no extra needed)."""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from itertools import zip_longest
from pathlib import Path
from typing import Any

from soundwatch.errors import ConfigError, SoundwatchError
from soundwatch.monitor.scoring import guess_machine
from soundwatch.monitor.watch import is_candidate

__all__ = ["FeedClient", "feed_name", "multipart_body", "plan_feed"]


class FeedClient:
    """A small HTTP client of ``soundwatch serve``.

    Args:
        url: The service's base address (``http://127.0.0.1:8000``).
        token: Bearer token, when the service needs one.
        timeout: Seconds per request.

    Raises:
        ConfigError: Not an http(s) URL.
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError("--url", f"expected http://HOST:PORT, got {url!r}")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _request(self, path: str, data: bytes | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url + path, data=data, headers=headers,  # noqa: S310
                                         method="POST" if data is not None else "GET")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                body = json.loads(exc.read() or b"{}")
            except ValueError:
                body = {"error": exc.reason}
            return exc.code, body if isinstance(body, dict) else {"error": str(body)}
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConfigError("--url", f"cannot reach {self.url} ({reason})") from exc

    def machines(self) -> list[str]:
        """The service's machine types.

        Raises:
            ConfigError: The service cannot be reached or refuses the request.
        """
        status, body = self._request("/v1/machines")
        if status != 200:
            error = body.get("error", "?") if isinstance(body, dict) else body
            raise ConfigError("--url", f"{self.url} answered {status}: {error}")
        return [m["machine"] for m in body]  # type: ignore[union-attr]

    def post_file(self, machine: str, path: str | os.PathLike[str],
                  name: str | None = None) -> tuple[int, dict[str, Any]]:
        """Post one audio file for scoring as a multipart upload; return (HTTP status, JSON).

        The service records the clip under ``name`` (default: the file's name). The
        request's ``X-Request-Id`` is the machine and the content's hash, so a repeated
        post is recorded once.
        """
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            return 0, {"error": f"{path}: {exc.strerror or exc}"}
        key = hashlib.sha256(machine.encode() + b"\0" + data).hexdigest()
        ctype = "audio/flac" if str(path).lower().endswith(".flac") else "audio/wav"
        body, form_type = multipart_body(name or Path(path).name, data, ctype)
        return self._request(f"/v1/machines/{urllib.parse.quote(machine, safe='')}/score", body,
                             {"Content-Type": form_type, "X-Request-Id": f"feed-{key}"})


def multipart_body(name: str, data: bytes, ctype: str) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body with one ``file`` field: ``(body, content type)``.

    Written here because the standard library has no multipart encoder (urllib keeps
    ``feed`` free of extra dependencies).
    """
    boundary = "soundwatch-" + uuid.uuid4().hex
    # as browsers do (the HTML standard's multipart/form-data encoding)
    quoted = name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{quoted}\"\r\nContent-Type: {ctype}\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}")


def feed_name(path: str | os.PathLike[str], folders: Sequence[str | os.PathLike[str]]) -> str:
    """The name a fed clip is recorded under: its path below the folder given, else its name.

    Keeps MIMII-style names apart (``id_00/normal/00000000.wav`` and
    ``id_00/abnormal/00000000.wav``).
    """
    path = Path(path)
    for folder in map(Path, folders):
        if folder.is_dir():
            try:
                return path.relative_to(folder).as_posix()
            except ValueError:
                continue
    return path.name


def plan_feed(folders: Sequence[str | os.PathLike[str]], machines: Sequence[str],
              machine: str | None = None) -> list[tuple[Path, str]]:
    """The ``(file, machine)`` pairs to post: machine types interleaved, files in name order.

    Files whose machine type cannot be told from their path are left out.

    Raises:
        ConfigError: A missing folder, or ``machine`` unknown to the service.
    """
    if machine is not None and machine not in machines:
        raise ConfigError("--machine", f"{machine!r} is not served (served: "
                          f"{', '.join(machines) or 'none'})")
    per_machine: dict[str, list[Path]] = {}
    for folder in map(Path, folders):
        if folder.is_file():
            files, root = [folder], folder.parent
        elif folder.is_dir():
            files = sorted(p for p in folder.rglob("*") if p.is_file() and is_candidate(p))
            root = folder
        else:
            raise ConfigError(folder, "no such file or folder")
        for path in files:
            try:
                kind = machine or guess_machine(path, machines, root)
            except SoundwatchError:
                try:
                    kind = guess_machine(path, machines)
                except SoundwatchError:
                    continue
            per_machine.setdefault(kind, []).append(path)
    rounds = zip_longest(*[[(p, m) for p in ps] for m, ps in sorted(per_machine.items())])
    return [item for group in rounds for item in group if item is not None]
