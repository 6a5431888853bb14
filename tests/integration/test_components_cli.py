"""`soundwatch components` lists every registry; presets ship inside the package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "soundwatch", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


def test_components_lists_every_registry():
    from soundwatch.cli.components_cmd import registries

    done = _run("components", "--json", "--params")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    for kind, registry in registries().items():
        assert set(registry.names()) <= set(data[kind]), kind
    assert data["scorers"]["knn"]["requires"] == "vectors"
    assert "n_neighbors" in data["scorers"]["knn"]["params"]
    assert data["encoders"]["ae"]["layout"] == "rows"


def test_components_table_keeps_bracketed_text():
    # "[pretrained]" in a description is text, not rich markup to swallow
    done = subprocess.run([sys.executable, "-m", "soundwatch", "components", "encoders"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "250"})
    assert done.returncode == 0, done.stderr
    assert "needs [pretrained]" in done.stdout


def test_components_refuses_an_unknown_kind():
    done = _run("components", "gizmos")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: KIND:") and "Traceback" not in done.stderr


def test_a_configs_folder_in_the_current_directory_does_not_hide_the_presets(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "ae.yaml").write_text("detector: knn\n")
    code = ("from soundwatch.config import find_preset, load_config; "
            "print(find_preset('ae')); print(load_config('ae').detector)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    path, detector = done.stdout.split()
    assert Path(path).parent.name == "configs" and Path(path).parent.parent.name == "soundwatch"
    assert detector == "ae"
