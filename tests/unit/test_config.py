"""Tests of soundwatch.config: YAML loading, overrides, presets and validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from soundwatch.config import (
    RunConfig,
    find_preset,
    list_presets,
    load_config,
    parse_param,
    parse_params,
)
from soundwatch.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_load_preset_file_reads_detector_and_params(tmp_path):
    text = "detector: ae\nparams:\n  epochs: 5\n  lr: 1.0e-3\n"
    cfg = load_config(write(tmp_path / "ae.yaml", text))
    assert cfg.detector == "ae"
    assert cfg.params == {"epochs": 5, "lr": 1e-3}
    assert (cfg.seed, cfg.device, cfg.machines, cfg.data) == (0, "auto", None, None)


def test_description_key_is_allowed_and_dropped(tmp_path):
    cfg = load_config(write(tmp_path / "p.yaml", "description: fast baseline\ndetector: knn\n"))
    assert cfg.to_dict()["detector"] == "knn" and "description" not in cfg.to_dict()


def test_load_full_config_keeps_every_field(tmp_path):
    text = "detector: knn\nparams: {k: 3}\ndata: /d\nmachines: [fan, pump]\nseed: 7\ndevice: cpu\n"
    cfg = load_config(write(tmp_path / "c.yaml", text))
    assert cfg.to_dict() == {"detector": "knn", "params": {"k": 3}, "data": "/d",
                             "machines": ["fan", "pump"], "seed": 7, "device": "cpu",
                             "channel": 0}


@pytest.mark.parametrize(("value", "expected"), [
    (0, 0), (3, 3), (-1, -1), ("2", 2), (" mean ", "mean"), ("MEAN", "mean")])
def test_parse_channel(value, expected):
    from soundwatch.config import parse_channel

    assert parse_channel(value) == expected


@pytest.mark.parametrize("value", ["x", "1.5", True, ""])
def test_parse_channel_refuses_other_values(value):
    from soundwatch.config import parse_channel

    with pytest.raises(ConfigError, match="--channel: channel must be an integer"):
        parse_channel(value)


def test_channel_is_recorded_in_the_config(tmp_path):
    cfg = RunConfig("knn", channel="mean")
    again = load_config(write(tmp_path / "x.yaml", cfg.to_yaml()))
    assert again.channel == "mean" and again.override(channel=2).channel == 2
    with pytest.raises(ConfigError, match="channel must be"):
        load_config(write(tmp_path / "bad.yaml", "detector: knn\nchannel: left\n"))


def test_yaml_round_trip_gives_the_same_config(tmp_path):
    params = {"k": 3, "metric": "cosine", "layers": [8, 4]}
    cfg = RunConfig("knn", params, "/data", ["fan"], 3, "cuda:1")
    again = load_config(write(tmp_path / "x.yaml", cfg.to_yaml()))
    assert again == cfg


def test_cli_values_override_yaml_and_params_merge():
    cfg = RunConfig("ae", {"epochs": 5, "lr": 0.1}, seed=1, device="cpu")
    new = cfg.override(params={"epochs": 2}, seed=9, machines=["fan"], data="/x")
    assert new.params == {"epochs": 2, "lr": 0.1}
    assert (new.seed, new.device, new.machines, new.data) == (9, "cpu", ["fan"], "/x")
    assert cfg.params == {"epochs": 5, "lr": 0.1}, "override must not change the original"


def test_override_with_none_keeps_yaml_values():
    cfg = RunConfig("ae", {"epochs": 5}, seed=4, device="cpu", machines=["fan"])
    assert cfg.override() == cfg


def test_changing_detector_drops_the_other_detectors_params():
    cfg = RunConfig("ae", {"epochs": 5})
    assert cfg.override(detector="knn").params == {}
    assert cfg.override(detector="knn", params={"k": 2}).params == {"k": 2}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("params: {a: 1}\n", "missing 'detector"),
        ("detector: ae\nepochs: 3\n", "unknown key(s) epochs"),
        ("detector: ae\nseed: -1\n", "seed must be a non-negative integer"),
        ("detector: ae\nseed: abc\n", "seed must be"),
        ("detector: ae\ndevice: tpu\n", "device must be"),
        ("detector: ae\nparams: [1, 2]\n", "params must be a mapping"),
        ("detector: ae\nmachines: [1]\n", "machines must be a list of names"),
        ("detector: 'bad name!'\n", "detector must be a name"),
        ("- just\n- a list\n", "expected a mapping"),
        ("detector: [unclosed\n", "invalid YAML at line"),
        ("", "empty config file"),
    ],
)
def test_invalid_config_raises_config_error_naming_the_file(tmp_path, text, message):
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_config_file_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SOUNDWATCH_CONFIGS", str(tmp_path))
    with pytest.raises(ConfigError, match="no such config file or shipped config"):
        load_config(tmp_path / "nope.yaml")


def test_preset_name_resolves_in_the_presets_folder(tmp_path, monkeypatch):
    write(tmp_path / "mypreset.yaml", "detector: knn\nparams: {k: 4}\n")
    monkeypatch.setenv("SOUNDWATCH_CONFIGS", str(tmp_path))
    assert "mypreset" in list_presets()
    assert find_preset("mypreset") == tmp_path / "mypreset.yaml"
    assert find_preset("../etc/passwd") is None
    cfg = load_config("mypreset")
    assert (cfg.detector, cfg.params) == ("knn", {"k": 4})


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("lr=1e-3", "lr", 1e-3),
        ("epochs=3", "epochs", 3),
        ("layers=[64, 32]", "layers", [64, 32]),
        ("metric=cosine", "metric", "cosine"),
        ("flag=true", "flag", True),
        ("x=null", "x", None),
        ("name=", "name", ""),
        ("expr=a=b", "expr", "a=b"),
    ],
)
def test_param_values_are_parsed_as_yaml(text, key, value):
    assert parse_param(text) == (key, value)


@pytest.mark.parametrize("text", ["noequals", "=3", "bad key=1", "k=[unclosed"])
def test_bad_param_option_is_a_config_error(text):
    with pytest.raises(ConfigError, match="--param"):
        parse_param(text)


def test_later_params_win():
    assert parse_params(["k=1", "k=2", "m=x"]) == {"k": 2, "m": "x"}


def test_to_yaml_is_plain_yaml():
    data = yaml.safe_load(RunConfig("ae", {"epochs": 1}).to_yaml())
    assert list(data) == ["detector", "params", "data", "machines", "seed", "device",
                          "channel"]


@pytest.mark.parametrize(
    ("yaml_text", "named"),
    [
        ("detector: ae\nseed: ten\n", "seed"),
        ("detector: ae\nseed: 1.5\n", "seed"),
        ("detector: ae\nseed: true\n", "seed"),
        ("detector: ae\ndevice: 5\n", "device"),
        ("detector: ae\nmachines: 3\n", "machines"),
        ("detector: ae\nmachines: [fan, 3]\n", "machines"),
        ("detector: ae\nparams: [1, 2]\n", "params"),
        ("detector: ae\ndata: 5\n", "data"),
        ("detector: [ae]\n", "detector"),
        ("detector: ae\nepochs: ten\n", "epochs"),
    ],
)
def test_wrong_top_level_types_name_the_parameter_and_the_file(tmp_path, yaml_text, named):
    path = tmp_path / "run.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and named in message and "\n" not in message
