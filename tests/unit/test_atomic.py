import os

import pytest

from soundwatch.atomic import atomic_open, atomic_path, write_json, write_text


def test_write_text_replaces_content_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    write_text(target, "one")
    write_text(target, "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]


def test_failed_write_keeps_the_old_content(tmp_path):
    target = tmp_path / "a.txt"
    write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_open(target, "w") as handle:
        handle.write("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_path_keeps_suffix_and_renames(tmp_path):
    target = tmp_path / "x.npy"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".npy" and tmp.parent == tmp_path
        tmp.write_bytes(b"data")
        assert not target.exists()
    assert target.read_bytes() == b"data"


def test_written_files_get_the_umask_mode(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "m.json", {"a": 1})
    finally:
        os.umask(old)
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o644


def test_temporary_names_carry_the_writer_pid(tmp_path):
    from soundwatch.atomic import TEMP_PATTERN

    with atomic_open(tmp_path / "a.csv") as handle:
        names = [p.name for p in tmp_path.iterdir()]
        handle.write("x")
    match = TEMP_PATTERN.match(names[0])
    assert match and int(match.group("pid")) == os.getpid()
    with atomic_path(tmp_path / "b.npz") as tmp:
        match = TEMP_PATTERN.match(tmp.name)
        assert match and int(match.group("pid")) == os.getpid() and tmp.suffix == ".npz"


def test_remove_leftovers_keeps_live_writers_files(tmp_path):
    import time

    from soundwatch.atomic import remove_leftovers

    (tmp_path / "sub").mkdir()
    dead = tmp_path / "sub" / ".a.csv.99999999.abcd1234.tmp"
    live = tmp_path / f".b.csv.{os.getpid()}.abcd1234.tmp"
    old = tmp_path / ".c.abcd1234.tmp.wav"  # no pid (older versions): removed when old
    young = tmp_path / ".d.abcd1234.tmp.wav"
    keep = tmp_path / ".hidden.tmp-not-ours"
    for path in (dead, live, old, young, keep):
        path.write_text("x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    removed = remove_leftovers(tmp_path)
    assert sorted(removed) == sorted([dead, old])
    assert live.exists() and young.exists() and keep.exists()
    assert remove_leftovers(tmp_path / "missing") == []


def test_a_write_error_without_a_file_name_is_given_the_path(tmp_path, monkeypatch):
    import errno

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as info:
        write_text(tmp_path / "a.txt", "x")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "a.txt")
    assert list(tmp_path.iterdir()) == []


def test_a_writer_runtime_error_on_a_full_disk_becomes_enospc(tmp_path, monkeypatch):
    import errno
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10, 10, 0))
    with pytest.raises(OSError) as info, atomic_path(tmp_path / "w.pt"):
        raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos 64")
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "w.pt")


def test_a_file_in_place_of_a_folder_is_named(tmp_path):
    from soundwatch.atomic import ensure_writable_dir
    from soundwatch.errors import OutputError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(NotADirectoryError) as info:
        write_text(blocker / "deeper" / "a.txt", "x")
    assert info.value.filename == str(blocker)
    with pytest.raises(OutputError, match="is a file"):
        ensure_writable_dir(blocker)
    with pytest.raises(OutputError) as err:
        ensure_writable_dir(blocker / "sub")
    assert str(blocker) in str(err.value)
    assert ensure_writable_dir(tmp_path / "new" / "dir").is_dir()


def test_text_with_non_utf8_file_names_is_written_as_the_original_bytes(tmp_path):
    name = os.fsdecode(b"f\xffan.wav")
    write_text(tmp_path / "list.txt", name + "\n")
    assert (tmp_path / "list.txt").read_bytes() == b"f\xffan.wav\n"
