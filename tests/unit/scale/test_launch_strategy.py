"""Unit tests of soundwatch.training.fit.launch_strategy (multi-device training)."""

from __future__ import annotations

import pytest

from soundwatch.errors import DetectorError
from soundwatch.training.fit import launch_strategy


@pytest.fixture(autouse=True)
def _no_launcher(monkeypatch):
    for var in ("LOCAL_RANK", "TORCHELASTIC_RUN_ID", "SLURM_PROCID"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize("strategy, devices, nodes, expected", [
    (None, None, 1, ("auto", False)),
    (None, 1, 1, ("auto", False)),
    ("ddp", 1, 1, ("ddp", False)),
    (None, 2, 1, ("ddp_fork", True)),
    ("ddp", 2, 1, ("ddp_fork", True)),
    ("ddp", [0, 1], 1, ("ddp_fork", True)),
    ("ddp", 1, 2, ("ddp_fork", True)),
    ("ddp_spawn", 2, 1, ("ddp_spawn", True)),
    ("fsdp", 2, 1, ("fsdp", False)),
])
def test_launch_strategy(strategy, devices, nodes, expected):
    assert launch_strategy(strategy, devices, nodes) == expected


def test_external_launcher_keeps_ddp(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert launch_strategy("ddp", 2, 1) == ("ddp", False)


def test_bad_node_count():
    with pytest.raises(DetectorError, match="num_nodes"):
        launch_strategy("ddp", 2, 0)
