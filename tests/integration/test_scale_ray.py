"""Train and score with ``--backend ray`` on a local Ray instance: same files and scores.

Needs the ``ray`` extra (in ``dev``); skipped with a message without it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers.cli import run_cli as cli
from soundwatch import pipeline
from soundwatch.detectors.registry import preset_test_params
from soundwatch.scale import MachinesFailed
from soundwatch.scale.ray_backend import RayExecutor

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'soundwatch[ray]')")


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    """One local Ray instance for the module (2 CPUs, no dashboard); shut down after."""
    import signal

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()
    for sig, handler in handlers.items():  # Ray's own handlers must not outlive it
        signal.signal(sig, handler)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Two synthetic machine types (DCASE 2024 layout), 1 s clips."""
    from soundwatch.synth import synth_machines

    root = tmp_path_factory.mktemp("scale") / "data"
    return synth_machines(root, machines=2, train_source=6, train_target=2, test_per_group=2,
                          seconds=1.0, workers=1)


def _scores(path: Path) -> tuple[list[str], np.ndarray]:
    from soundwatch.scores import read_scores_table

    table = read_scores_table(path)
    return table["path"].astype(str).tolist(), table["score"].to_numpy()


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and "scores" not in p.parts and p.name != "run.json")


@pytest.mark.parametrize("detector", ["mahalanobis", "ae"])
def test_ray_backend_gives_the_local_scores(detector, data, tmp_path):
    params = preset_test_params(detector)
    runs = {}
    for backend, executor in (("local", None), ("ray", RayExecutor())):
        run = pipeline.train(data, detector, params=params, out=tmp_path / backend,
                             executor=executor)
        table = pipeline.score(run.root, out=run.root / "scores" / "test", executor=executor)
        assert len(table) == 16
        runs[backend] = run
    local, remote = runs["local"].root, runs["ray"].root
    assert _files(local) == _files(remote)  # the same detector, log and part files
    for name in ("scores/train_scores.csv", "scores/test/scores.csv"):
        paths_l, scores_l = _scores(local / name)
        paths_r, scores_r = _scores(remote / name)
        assert paths_l == paths_r
        np.testing.assert_array_equal(scores_l, scores_r)  # identical, not close
    dcase = sorted(p.name for p in (local / "scores" / "test").glob("anomaly_score_*.csv"))
    assert dcase and dcase == sorted(
        p.name for p in (remote / "scores" / "test").glob("anomaly_score_*.csv"))
    for name in dcase:
        assert (local / "scores" / "test" / name).read_text() == (
            remote / "scores" / "test" / name).read_text()
    info = json.loads((remote / "run.json").read_text())
    assert info["finished"] is True and info["failed"] == {}
    assert sorted(info["machines"]) == sorted(json.loads((local / "run.json").read_text())
                                              ["machines"])


def test_failed_machine_is_reported_and_the_others_saved(data, tmp_path, monkeypatch, capsys):
    broken = tmp_path / "data"
    shutil.copytree(data, broken)
    first, second = sorted(p.name for p in broken.iterdir() if p.is_dir())
    for wav in (broken / second / "train").glob("*.wav"):
        wav.write_text("not audio\n" * 20)  # every training clip of one machine unreadable
    out = tmp_path / "run"
    code, _, err = cli(monkeypatch, capsys, "train", broken, "-d", "mahalanobis", "-p",
                       "frontend_params={n_mels: 32}", "--no-cache", "--out", out,
                       "--backend", "ray")
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith(("failed ", "error:"))]
    assert len(lines) == 2, err
    assert lines[0].startswith(f"failed {second}: ") and "not audio" in lines[0], err
    assert lines[-1].startswith("error: ") and f"1 machine type(s): {second}" in lines[-1]
    info = json.loads((out / "run.json").read_text())
    assert list(info["machines"]) == [first] and list(info["failed"]) == [second]
    assert info["finished"] is False
    assert (out / "detector" / first / "config.json").is_file()
    assert not (out / "detector" / second).exists()

    # repair the data; --resume on the other backend trains only the failed machine type
    shutil.rmtree(broken / second)
    shutil.copytree(data / second, broken / second)
    code, _, err = cli(monkeypatch, capsys, "train", broken, "-d", "mahalanobis", "-p",
                       "frontend_params={n_mels: 32}", "--no-cache", "--out", out,
                       "--resume", "--backend", "local")
    assert code == 0, err
    assert f"{first}: already done, skipped" in err
    info = json.loads((out / "run.json").read_text())
    assert sorted(info["machines"]) == [first, second] and info["finished"] is True


def test_library_raises_machines_failed(data, tmp_path):
    broken = tmp_path / "data"
    shutil.copytree(data, broken)
    machines = sorted(p.name for p in broken.iterdir() if p.is_dir())
    for machine in machines:
        for wav in (broken / machine / "train").glob("*.wav"):
            wav.write_bytes(b"")
    with pytest.raises(MachinesFailed) as info:
        pipeline.train(broken, "mahalanobis", params=preset_test_params("mahalanobis"),
                       out=tmp_path / "run", executor=RayExecutor())
    assert sorted(info.value.failures) == machines
    assert all("empty file" in reason for reason in info.value.failures.values())


def test_ray_scoring_resumes_and_reports_bad_files(data, tmp_path, monkeypatch, capsys):
    run = pipeline.train(data, "mahalanobis", params=preset_test_params("mahalanobis"),
                         out=tmp_path / "run")
    out = tmp_path / "run" / "scores" / "again"
    code, _, err = cli(monkeypatch, capsys, "score", run.root, "--out", out, "--backend", "ray")
    assert code == 0, err
    first = _scores(out / "scores.csv")
    code, _, err = cli(monkeypatch, capsys, "score", run.root, "--out", out, "--backend", "ray")
    assert code == 0, err
    assert err.count("already done, skipped") == 2  # both machine types' parts reused
    again = _scores(out / "scores.csv")
    assert again[0] == first[0]
    np.testing.assert_array_equal(again[1], first[1])

    # an unreadable recording: one line naming it (exit 2), or skipped with --skip-bad
    clips = tmp_path / "clips"
    machine = sorted(run.machines())[0]
    shutil.copytree(data / machine / "test", clips / machine)
    bad = sorted((clips / machine).glob("*.wav"))[0]
    bad.write_text("not audio\n" * 20)
    code, _, err = cli(monkeypatch, capsys, "score", run.root, clips, "--backend", "ray")
    assert code == 2 and bad.name in err and err.strip().count("\n") == 0, err
    code, _, err = cli(monkeypatch, capsys, "score", run.root, clips, "--backend", "ray",
                       "--skip-bad", "--json")
    assert code == 0, err
    info = json.loads((run.root / "run.json").read_text())
    assert any(s["path"] == str(bad) for s in info["skipped"])
