"""``soundwatch download`` against a loopback HTTP server serving archives the tests build."""

from __future__ import annotations

import errno
import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers.cli import one_error_line, run_cli
from soundwatch.datasets import download as dl
from soundwatch.datasets import scan, sources
from soundwatch.datasets.sources import Archive, DatasetSource
from soundwatch.errors import ConfigError, DatasetError

pytest.importorskip("pooch")

SR = 16000


def _wav_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    x = 0.1 * np.random.default_rng(seed).standard_normal(SR // 4)
    sf.write(buf, x.astype(np.float32), SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _dev_zip(machine: str) -> bytes:
    members = {}
    for i in range(2):
        name = f"section_00_source_{{}}_{i:04d}_a_1.wav"
        members[f"{machine}/train/" + name.format("train_normal")] = _wav_bytes(i)
        members[f"{machine}/test/" + name.format("test_anomaly")] = _wav_bytes(9 + i)
    members[f"{machine}/attributes_00.csv"] = b"file_name,d1p,d1v\n"
    members[f"{machine}/README.bin"] = np.random.default_rng(5).bytes(300_000)  # several chunks
    return _zip(members)


class _Server:
    """A loopback server: ``files`` by URL path, honouring ``Range``; can cut a response."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_after: int | None = None  # send this many bytes of the next response, then drop
        self.ranges: list[str | None] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                data = outer.files.get(self.path)
                outer.ranges.append(self.headers.get("Range"))
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.cut_after is not None:
                    self.wfile.write(body[: outer.cut_after])
                    self.wfile.flush()
                    outer.cut_after = None
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


@pytest.fixture
def test_set(server, monkeypatch):
    """A data set 'test-set' of one archive whose MD5 is published (the true one)."""
    data = _dev_zip("fan")
    server.files["/files/dev_fan.zip"] = data
    archive = Archive(f"{server.url}/files/dev_fan.zip", "dev_fan.zip", "fan",
                      hashlib.md5(data).hexdigest(), len(data))
    source = DatasetSource("test-set", "a test set", server.url, "test/dev_data/raw",
                           (archive,), "test")
    monkeypatch.setitem(sources.SOURCES, "test-set", source)
    return source, data


def _wavs(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.wav")) if folder.exists() else []


def test_full_download_unpacks_into_the_layout_soundwatch_reads(test_set, tmp_path):
    source, _ = test_set
    result = dl.download_dataset("test-set", tmp_path)
    folder = tmp_path / "test" / "dev_data" / "raw"
    assert result.folder == folder and result.unpacked == ["dev_fan.zip"]
    found = scan(folder)
    assert found.layouts == {"dcase-dev": 4} and found.machines == ["fan"]
    assert not (tmp_path / "archives" / "test-set" / "dev_fan.zip").exists()  # not kept
    assert not list(folder.glob(".unpack-*"))
    again = dl.download_dataset("test-set", tmp_path)  # a rerun skips the finished archive
    assert again.unpacked == [] and again.skipped == ["dev_fan.zip"]


def test_interrupted_download_resumes_with_a_range_request(test_set, server, tmp_path):
    _, data = test_set
    server.cut_after = 200_000
    with pytest.raises(DatasetError, match="interrupted after [0-9]+ bytes.*resume"):
        dl.download_dataset("test-set", tmp_path)
    part = tmp_path / "archives" / "test-set" / "dev_fan.zip.part"
    have = part.stat().st_size
    assert 0 < have <= 200_000 < len(data)
    assert _wavs(tmp_path / "test") == []  # nothing unpacked from a partial archive
    result = dl.download_dataset("test-set", tmp_path, keep_archives=True)
    assert server.ranges[-1] == f"bytes={have}-"
    assert result.unpacked == ["dev_fan.zip"] and not part.exists()
    kept = tmp_path / "archives" / "test-set" / "dev_fan.zip"
    assert kept.read_bytes() == data
    assert len(_wavs(tmp_path / "test")) == 4


def test_wrong_checksum_is_a_clear_error_and_leaves_no_data(test_set, monkeypatch, tmp_path):
    source, _ = test_set
    bad = source.archives[0].__class__(**{**source.archives[0].__dict__, "md5": "0" * 32})
    monkeypatch.setitem(sources.SOURCES, "test-set",
                        DatasetSource(**{**source.__dict__, "archives": (bad,)}))
    with pytest.raises(DatasetError, match="checksum mismatch.*deleted") as info:
        dl.download_dataset("test-set", tmp_path)
    assert "\n" not in str(info.value)
    cache = tmp_path / "archives" / "test-set"
    assert [p.name for p in cache.iterdir()] == []  # neither the archive nor a .part
    assert _wavs(tmp_path) == []
    assert not list((tmp_path / "test" / "dev_data" / "raw" / dl.MARKER_DIR).iterdir())


def test_full_disk_while_downloading(test_set, monkeypatch, tmp_path):
    def no_space(handle, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(dl, "_write_chunk", no_space)
    with pytest.raises(DatasetError, match="no space left on the device while downloading"):
        dl.download_dataset("test-set", tmp_path)
    assert not (tmp_path / "archives" / "test-set" / "dev_fan.zip").exists()
    assert _wavs(tmp_path) == []


def test_full_disk_while_unpacking_leaves_no_half_data_set(test_set, monkeypatch, tmp_path):
    real = zipfile.ZipFile.extract
    calls = []

    def extract(self, member, path=None, pwd=None):
        calls.append(member)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, member, path, pwd)

    monkeypatch.setattr(zipfile.ZipFile, "extract", extract)
    with pytest.raises(DatasetError, match="no space left.*unpacking dev_fan.zip"):
        dl.download_dataset("test-set", tmp_path)
    folder = tmp_path / "test" / "dev_data" / "raw"
    assert _wavs(folder) == [] and not list(folder.glob(".unpack-*"))
    monkeypatch.setattr(zipfile.ZipFile, "extract", real)
    assert dl.download_dataset("test-set", tmp_path).unpacked == ["dev_fan.zip"]  # rerun works
    assert len(_wavs(folder)) == 4


def test_unsafe_archive_is_refused(server, monkeypatch, tmp_path):
    data = _zip({"../evil.wav": b"x", "fan/train/a.wav": b"y"})
    server.files["/files/evil.zip"] = data
    source = DatasetSource("evil-set", "evil", server.url, "evil",
                           (Archive(f"{server.url}/files/evil.zip", "evil.zip", "fan"),), "none")
    monkeypatch.setitem(sources.SOURCES, "evil-set", source)
    with pytest.raises(DatasetError, match="unsafe member path"):
        dl.download_dataset("evil-set", tmp_path)
    assert not (tmp_path / "evil.wav").exists() and _wavs(tmp_path) == []


def test_base_url_override_with_the_real_registry(server, monkeypatch, tmp_path, capsys):
    """The official dcase2025-dev entry, fetched from a mirror given by the environment."""
    server.files["/dcase2025-dev/dev_fan.zip"] = _dev_zip("fan")
    monkeypatch.setenv(dl.BASE_URL_ENV, server.url)
    source, archives = dl.select_archives("dcase2025-dev", ["fan"])
    assert archives[0].url == "https://zenodo.org/records/15097779/files/dev_fan.zip"
    assert dl.archive_url(source, archives[0]) == f"{server.url}/dcase2025-dev/dev_fan.zip"
    code, out, err = run_cli(monkeypatch, capsys, "download", "dcase2025-dev", "--machine", "fan",
                             "--dir", tmp_path, "--quiet")
    assert code == 0, err
    folder = tmp_path / "dcase2025t2" / "dev_data" / "raw"
    assert f"data set: {folder}" in out
    assert scan(folder).machines == ["fan"]
    assert server.ranges == [None]  # one plain request, to the mirror


def test_unknown_names_are_one_line_errors(monkeypatch, capsys, tmp_path):
    code, err = run_cli(monkeypatch, capsys, "download", "dcase1999-dev", "--dir", tmp_path)[::2]
    assert code == 2 and "unknown data set 'dcase1999-dev'" in one_error_line(err)
    code, err = run_cli(monkeypatch, capsys, "download", "mimii", "--machine", "drill",
                        "--dir", tmp_path)[::2]
    assert code == 2 and "drill not in mimii" in one_error_line(err)
    with pytest.raises(ConfigError):
        dl.select_archives("nope")


def test_registry_covers_2020_to_2026_and_mimii():
    names = set(sources.dataset_names())
    for year in range(2020, 2027):
        assert {f"dcase{year}-dev", f"dcase{year}-add"} <= names
    assert {"dcase2025-eval", "dcase2026-eval", "mimii", "dcase2024-truth"} <= names
    mimii = sources.SOURCES["mimii"]
    assert len(mimii.archives) == 12 and all(len(a.md5 or "") == 32 for a in mimii.archives)
    assert {a.subdir for a in mimii.archives} >= {"-6_dB_fan", "6_dB_valve"}
    for source in sources.SOURCES.values():
        assert source.checksums and all(a.url.startswith("https://") for a in source.archives)
        assert len({a.file for a in source.archives}) == len(source.archives)
