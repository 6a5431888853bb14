"""Help texts name the real default detector; ``default`` is an alias of it."""

from __future__ import annotations

import pytest

from helpers.cli import run_cli
from soundwatch.detectors import create_detector
from soundwatch.detectors.presets import DEFAULT_DETECTOR
from soundwatch.detectors.registry import resolve_detector_name


def test_train_help_names_the_real_default(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "train", "--help")
    assert code == 0
    flat = " ".join(out.replace("│", " ").split())
    assert f"default: the recommended {DEFAULT_DETECTOR}" in flat
    assert "{default_detector}" not in out


def test_default_is_an_alias_of_the_default_preset(monkeypatch):
    assert resolve_detector_name("default") == DEFAULT_DETECTOR
    assert resolve_detector_name("ae") == "ae"
    assert create_detector("default").name == DEFAULT_DETECTOR


def test_a_run_records_the_real_name(tmp_path):
    from soundwatch.pipeline import resolve_config

    assert resolve_config(tmp_path, "default").detector == DEFAULT_DETECTOR
    assert resolve_config(tmp_path, None).detector == DEFAULT_DETECTOR
    (tmp_path / "c.yaml").write_text("detector: default\nparams: {}\n")
    assert resolve_config(tmp_path, None, str(tmp_path / "c.yaml")).detector == DEFAULT_DETECTOR


@pytest.mark.parametrize("command", ["score", "watch", "serve", "export"])
def test_channel_option_on_commands_that_read_audio(monkeypatch, capsys, command):
    code, out, _ = run_cli(monkeypatch, capsys, command, "--help")
    assert code == 0 and "--channel" in out and "N|mean" in out
