"""soundwatch encoders: every registered encoder with its weights' source and licence."""

from __future__ import annotations

import json

from helpers.cli import run_cli
from soundwatch.detectors.encoders import list_encoders


def test_json_lists_every_encoder_with_source_and_licence(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "encoders", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) == set(list_encoders())
    assert "github.com/microsoft/unilm" in data["beats"]["weights"]
    assert data["beats"]["licence"] == "MIT"
    assert data["hf-ast"]["needs"] == "pip install 'soundwatch[hf]'"
    assert data["ae"]["weights"] == "trained by soundwatch on your data"
    assert all(entry["weights"] and entry["licence"] and entry["description"]
               for entry in data.values())


def test_table_names_every_encoder(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli(monkeypatch, capsys, "encoders")
    assert code == 0
    for name in list_encoders():
        assert name in out
    assert "SOUNDWATCH_BEATS_CHECKPOINT" in out
