"""CLI conventions: --version, -v/-q, --json, completion, defaults and metavars in help."""

from __future__ import annotations

import json
import logging
import re
import sys

import pytest

from helpers.cli import run_cli


def test_version(monkeypatch, capsys):
    from soundwatch import __version__

    code, out, _ = run_cli(monkeypatch, capsys, "--version")
    assert code == 0 and out.strip() == f"soundwatch {__version__}"


@pytest.mark.parametrize(("flags", "level"), [
    ([], logging.WARNING), (["-v"], logging.INFO), (["-vv"], logging.DEBUG),
    (["--verbose", "--verbose"], logging.DEBUG), (["-q"], logging.ERROR),
])
def test_verbosity_sets_the_log_level(monkeypatch, capsys, flags, level):
    code, _, _ = run_cli(monkeypatch, capsys, *flags, "detectors")
    assert code == 0
    assert logging.getLogger("soundwatch").level == level


def test_detectors_json(monkeypatch, capsys):
    from soundwatch.detectors import describe_detectors

    code, out, _ = run_cli(monkeypatch, capsys, "detectors", "--json")
    assert code == 0
    assert json.loads(out) == describe_detectors()


def test_completion_is_offered(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "--help")
    assert code == 0
    assert "--install-completion" in out and "--show-completion" in out
    assert "--version" in out and "--quiet" in out


@pytest.mark.parametrize("command", ["score", "evaluate", "train", "render", "plot", "demo"])
def test_help_shows_defaults_and_clean_metavars(monkeypatch, capsys, command):
    code, out, _ = run_cli(monkeypatch, capsys, command, "--help")
    assert code == 0
    assert "<bool>" not in out, "flags take no value"
    assert "<list[" not in out
    if command in ("evaluate", "render", "demo"):
        assert re.search(r"\[default: [^\]]+\]", out)


def test_help_imports_neither_torch_nor_matplotlib():
    import subprocess

    code = ("import sys; sys.argv = ['soundwatch', '--help']\n"
            "from soundwatch.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules, "
            "[m for m in ('torch', 'matplotlib') if m in sys.modules]\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_progress_lines_when_stderr_is_not_a_terminal(caplog):
    import time

    from soundwatch.cli.train_cmd import _feedback, _Heartbeat

    caplog.set_level(logging.INFO, logger="soundwatch.progress")
    beat = _Heartbeat("training", interval=0.05)
    beat.start("fan")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(caplog.records) < 2:
        time.sleep(0.05)
    beat.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "soundwatch.progress"]
    assert len(lines) >= 2 and all(re.fullmatch(r"training fan: \d+ s", x) for x in lines)
    settled = len(caplog.records)
    time.sleep(0.2)
    assert len(caplog.records) == settled, "no line after stop()"
    on_machine = _feedback("training")  # pytest's stderr is not a terminal: heartbeat on
    on_machine("fan", "start")
    on_machine("fan", "done")  # stops its heartbeat


def test_a_chained_library_error_prints_one_line(monkeypatch, capsys, tmp_path):
    from soundwatch.config import load_config
    from soundwatch.errors import ConfigError

    bad = tmp_path / "bad.yaml"
    bad.write_text("detector: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert info.value.__cause__ is not None  # the library keeps the cause (from exc)
    data = tmp_path / "data"
    data.mkdir()
    code, _, err = run_cli(monkeypatch, capsys, "train", str(data), "--config", str(bad))
    assert code == 2
    lines = err.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith("error: ") and "bad.yaml" in lines[0]
    assert "Traceback" not in err and "ParserError" not in err
