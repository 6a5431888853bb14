"""Unit tests of soundwatch.scale: backend checks, Ray settings, failure reasons."""

from __future__ import annotations

import pickle
import sys

import pytest

from soundwatch.errors import ConfigError, DatasetError
from soundwatch.scale import INSTALL_HINT, MachinesFailed, RaySettings, check_backend
from soundwatch.scale.ray_backend import _reason


def test_unknown_backend_is_refused():
    with pytest.raises(ConfigError, match="not one of local, ray"):
        check_backend("spark")


def test_local_backend_needs_nothing():
    check_backend("local")


def test_missing_ray_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError) as info:
        check_backend("ray")
    assert str(info.value) == f"--backend ray: {INSTALL_HINT}"
    assert "pip install 'soundwatch[ray]'" in str(info.value)


def test_missing_ray_cli_is_one_line_exit_2(monkeypatch, capsys, tmp_path):
    from soundwatch.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)
    for args in (["train", str(tmp_path), "--backend", "ray"],
                 ["score", str(tmp_path), "--backend", "ray"]):
        monkeypatch.setattr(sys, "argv", ["soundwatch", *args])
        with pytest.raises(SystemExit) as info:
            main()
        assert info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "pip install 'soundwatch[ray]'" in err, err


@pytest.mark.parametrize("kwargs, flag", [
    ({"cpus_per_task": 0}, "--cpus-per-task"),
    ({"gpus_per_task": -1}, "--gpus-per-task"),
    ({"actors": 0}, "actors"),
    ({"batch_size": 0}, "batch_size"),
])
def test_ray_settings_are_checked(kwargs, flag):
    with pytest.raises(ConfigError, match=flag):
        RaySettings(**kwargs)


def test_ray_settings_pickle():
    settings = RaySettings("auto", 2, 0.5, actors=3, batch_size=8)
    back = pickle.loads(pickle.dumps(settings))
    assert repr(back) == repr(settings)


def test_machines_failed_lists_the_machines_and_pickles():
    exc = MachinesFailed("runs/r", {"valve": "x: bad", "fan": "y: worse"})
    assert "2 machine type(s): fan, valve" in str(exc)
    back = pickle.loads(pickle.dumps(exc))
    assert back.failures == exc.failures and str(back) == str(exc)


class _TaskError(Exception):
    """Stands in for ray.exceptions.RayTaskError (its ``cause`` is the task's exception)."""

    def __init__(self, cause):
        super().__init__("Traceback (most recent call last):\n  ...\nlong text")
        self.cause = cause


def test_reason_is_the_user_error_line():
    assert _reason(_TaskError(DatasetError("data [fan]", "every clip unreadable"))) == (
        "data [fan]: every clip unreadable")


def test_reason_of_other_errors_is_one_line():
    text = _reason(_TaskError(ValueError("bad\nthing")))
    assert text == "ValueError: bad thing"
    assert "\n" not in _reason(RuntimeError("worker\ndied"))


@pytest.mark.parametrize("value", ["two", "0,x"])
def test_bad_devices_is_one_line_exit_2(value, monkeypatch, capsys, tmp_path):
    from soundwatch.cli import main

    monkeypatch.setattr(sys, "argv", ["soundwatch", "train", str(tmp_path), "--devices", value])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --devices: ") and "\n" not in err, err


def test_devices_are_parsed():
    from soundwatch.cli.train_cmd import _parse_devices

    assert _parse_devices(None) is None
    assert _parse_devices("2") == 2
    assert _parse_devices("auto") == "auto"
    assert _parse_devices("0,1") == [0, 1]
