"""Tests of soundwatch.pipeline: train and score on a tiny generated dataset, long recordings."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from soundwatch import pipeline
from soundwatch.detectors import Detector
from soundwatch.detectors.loading import load_run_detector
from soundwatch.errors import AudioError, ConfigError, DatasetError, DetectorError
from soundwatch.runs import Run
from soundwatch.scores import SCORE_COLUMNS, read_scores_table
from soundwatch.training.context import RunContext

SR = 16000
DETECTOR = "mahalanobis"  # fast classical detector of the registry
FAST = {"frontend_params": {"n_mels": 32}}


def _noise(rng: np.random.Generator, amp: float, seconds: float = 0.5) -> np.ndarray:
    return (amp * rng.standard_normal(int(SR * seconds))).astype(np.float32)


def make_dataset(root: Path, seed: int = 0) -> Path:
    """DCASE 2020 layout: fan and pump (train + test), valve (test only).

    fan/train also holds one anomaly, which unsupervised training must leave out.
    """
    rng = np.random.default_rng(seed)
    for machine in ("fan", "pump", "valve"):
        if machine != "valve":
            for i in range(6):
                path = root / machine / "train" / f"normal_id_00_{i:08d}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, _noise(rng, 0.1), SR)
        for i in range(3):
            for label, amp in (("normal", 0.1), ("anomaly", 0.6)):
                path = root / machine / "test" / f"{label}_id_00_{i:08d}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, _noise(rng, amp), SR)
    sf.write(root / "fan" / "train" / "anomaly_id_00_00000100.wav", _noise(rng, 0.6), SR)
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory) -> tuple[Run, pd.DataFrame]:
    out = tmp_path_factory.mktemp("runs") / "run"
    run = pipeline.train(dataset, DETECTOR, machines=["fan", "pump"], out=out, params=FAST)
    return run, pipeline.score(out)


def test_train_writes_the_run_folder(trained, dataset):
    run, _ = trained
    root = run.root
    for rel in ("config.yaml", "run.json", "detector/fan/config.json",
                "detector/pump/config.json", "scores/train_scores.csv"):
        assert (root / rel).is_file(), rel
    assert not (root / "detector" / "valve").exists()
    cfg = run.config()
    assert (cfg.detector, cfg.data, cfg.machines, cfg.seed) == (
        DETECTOR, str(dataset.resolve()), ["fan", "pump"], 0)
    assert cfg.params == FAST
    info = json.loads((root / "run.json").read_text())
    assert {"discover", "train/fan", "train/pump", "train_scores/fan"} <= set(info["steps"])
    assert info["steps"]["train/fan"]["clips"] == 6
    assert info["machines"]["fan"]["labels"] == {"0": 6}
    assert info["libraries"]["numpy"] == np.__version__
    assert info["skipped"] == []
    assert not list(root.glob("**/.*.tmp*")), "no temporary file left behind"


def test_train_scores_hold_only_normal_training_clips(trained):
    run, _ = trained
    table = read_scores_table(run.train_scores_path)
    assert list(table.columns[:7]) == SCORE_COLUMNS
    assert sorted(table["machine"].unique()) == ["fan", "pump"]
    assert (table["split"] == "train").all()
    assert (table["label"] == 0).all(), "the training anomaly must be left out"
    assert len(table) == 12


def test_score_writes_scores_table(trained):
    run, table = trained
    assert list(table.columns[:7]) == SCORE_COLUMNS
    assert len(table) == 12 and (table["split"] == "test").all()
    on_disk = read_scores_table(run.scores_path)
    assert on_disk["path"].tolist() == table["path"].tolist()
    np.testing.assert_allclose(on_disk["score"], table["score"], rtol=1e-8)
    means = table.groupby("label")["score"].mean()
    assert means[1.0] > means[0.0], "loud anomalies must score higher"


def test_score_writes_dcase_files_without_header(trained, dataset):
    run, table = trained
    folder = Path(table.attrs["scores_dir"])
    assert folder.parent == run.scores_dir, "each scoring gets its own folder under scores/"
    files = sorted(p.name for p in folder.glob("anomaly_score_*.csv"))
    # DCASE 2020 data: the 2020 evaluator's names
    assert files == ["anomaly_score_fan_id_00.csv", "anomaly_score_pump_id_00.csv"]
    lines = (folder / files[0]).read_text().splitlines()
    names = sorted(line.split(",")[0] for line in lines)
    assert names == sorted(p.name for p in (dataset / "fan" / "test").glob("*.wav"))
    for line in lines:
        name, value = line.split(",")
        float(value)
        assert name.endswith(".wav")


def test_rerun_of_score_skips_finished_machines(trained, monkeypatch):
    run, table = trained
    loads = []
    original = Detector.load.__func__

    def counting_load(cls, directory):
        loads.append(Path(directory).name)
        return original(cls, directory)

    monkeypatch.setattr(Detector, "load", classmethod(counting_load))
    folder = Path(table.attrs["scores_dir"])
    again = pipeline.score(run.root, out=folder)  # the same job into its folder: nothing to do
    assert loads == []
    pd.testing.assert_frame_equal(again, table)
    # as if interrupted while writing pump: no scores.csv yet, pump's part unfinished
    (folder / "scores.csv").unlink()
    (folder / "parts" / "pump.json").unlink()
    info = json.loads(run.info_path.read_text())
    info["scorings"][folder.name]["finished"] = False
    run.info_path.write_text(json.dumps(info))
    resumed = pipeline.score(run.root)
    assert loads == ["pump"]
    assert resumed.attrs["scores_dir"] == str(folder), "the unfinished scoring is resumed"


def test_score_into_another_folder(trained, tmp_path):
    run, table = trained
    out = tmp_path / "elsewhere"
    again = pipeline.score(run.root, out=out, machines=["pump"])
    assert (out / "scores.csv").is_file()
    written = [p.name for p in out.glob("anomaly_score_*")]
    assert written == ["anomaly_score_pump_id_00.csv"]
    expected = table[table["machine"] == "pump"].reset_index(drop=True)
    np.testing.assert_allclose(again["score"], expected["score"])


def test_same_seed_gives_same_scores(trained, dataset, tmp_path):
    run, _ = trained
    again = pipeline.train(dataset, DETECTOR, machines=["fan"], out=tmp_path / "r2",
                           params=FAST)
    first = read_scores_table(run.train_scores_path)
    second = read_scores_table(again.train_scores_path)
    np.testing.assert_allclose(second["score"], first[first["machine"] == "fan"]["score"])


def test_resume_trains_only_missing_machines(dataset, tmp_path):
    out = tmp_path / "r"
    pipeline.train(dataset, DETECTOR, machines=["fan"], out=out, params=FAST)
    stamp = (out / "detector" / "fan" / "config.json").stat().st_mtime_ns
    with pytest.raises(ConfigError, match="already holds a run"):
        pipeline.train(dataset, DETECTOR, machines=["fan", "pump"], out=out, params=FAST)
    run = pipeline.train(dataset, DETECTOR, machines=["fan", "pump"], out=out, params=FAST,
                         context=RunContext(resume=True))
    assert run.machines() == ["fan", "pump"]
    assert (out / "detector" / "fan" / "config.json").stat().st_mtime_ns == stamp
    table = read_scores_table(run.train_scores_path)
    assert sorted(table["machine"].unique()) == ["fan", "pump"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"data": "missing-folder"}, DatasetError, "no such data folder"),
        ({"detector": "no-such-detector"}, DetectorError, "unknown detector"),
        ({"machines": ["drill"]}, DatasetError, "unknown machine(s) drill"),
        ({"machines": ["valve"]}, DatasetError, "no normal training clips"),
        ({"params": {"bogus": 1}}, DetectorError, "unknown parameter 'bogus'"),
        ({"epochs": 3}, ConfigError, "has no 'epochs' parameter"),
        ({"params": {"seed": 3}}, ConfigError, "set by --seed"),
        ({"params": {"channel": 1}}, ConfigError, "set by --channel"),
        ({"params": {"devices": 2}}, ConfigError, "set by the pipeline"),
        ({"context": RunContext(channel=1)}, ConfigError, "differs from the config's 0"),
        ({"context": RunContext(device="cpu"), "device": "cuda"}, ConfigError,
         "context.device"),
        ({"params": {"score_method": "mse"}}, ConfigError, "-p scorer=NAME"),
    ],
)
def test_train_errors(dataset, tmp_path, kwargs, error, message):
    args = {"data": dataset, "detector": DETECTOR, "out": tmp_path / "r", "params": FAST,
            **kwargs}
    if kwargs.get("data") == "missing-folder":
        args["data"] = tmp_path / "missing-folder"
    with pytest.raises(error) as info:
        pipeline.train(**args)
    assert message in str(info.value)


def test_machine_without_training_clips_fails_before_training(dataset, tmp_path):
    with pytest.raises(DatasetError, match="for valve: the data holds only test clips"):
        pipeline.train(dataset, DETECTOR, out=tmp_path / "r", params=FAST)
    assert not (tmp_path / "r").exists(), "nothing trained or written"


def test_score_errors(tmp_path, dataset):
    with pytest.raises(ConfigError, match="no such run folder"):
        pipeline.score(tmp_path / "nope")
    from soundwatch.config import RunConfig

    Run.create(RunConfig(DETECTOR, data=str(dataset)), tmp_path / "empty-run")
    with pytest.raises(DetectorError, match="no trained detector"):
        pipeline.score(tmp_path / "empty-run")


def test_score_unknown_machine_and_missing_data(trained, tmp_path):
    run, _ = trained
    with pytest.raises(DatasetError, match="unknown machine"):
        pipeline.score(run.root, machines=["valve"], out=tmp_path)
    with pytest.raises(DatasetError, match="no such file or folder"):
        pipeline.score(run.root, data=tmp_path / "gone", out=tmp_path)


@pytest.fixture(scope="module")
def bad_dataset(dataset, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad") / "data"
    shutil.copytree(dataset, root)
    shutil.rmtree(root / "valve")
    (root / "fan" / "train" / "normal_id_00_00000099.wav").write_bytes(b"RIFF\x00\x00junk")
    (root / "pump" / "test" / "normal_id_00_00000099.wav").write_bytes(b"")
    return root


def test_bad_file_fails_without_skip_bad(bad_dataset, tmp_path):
    with pytest.raises(AudioError, match="normal_id_00_00000099.wav"):
        pipeline.train(bad_dataset, DETECTOR, out=tmp_path / "r", params=FAST)


def test_skip_bad_records_skipped_files(bad_dataset, tmp_path):
    run = pipeline.train(bad_dataset, DETECTOR, out=tmp_path / "r", params=FAST,
                         skip_bad=True)
    assert run.machines() == ["fan", "pump"]
    with pytest.raises(AudioError, match="empty file"):
        pipeline.score(run.root)
    table = pipeline.score(run.root, skip_bad=True)
    skipped = json.loads(run.info_path.read_text())["skipped"]
    name = Path(table.attrs["scores_dir"]).name
    assert [(Path(s["path"]).parent.parent.name, s["step"]) for s in skipped] == [
        ("fan", "train/fan"), ("pump", f"score/{name}/pump")]
    assert all(s["reason"] for s in skipped)
    assert not table["path"].str.endswith("normal_id_00_00000099.wav").any()
    assert len(table) == 12


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory) -> Path:
    """60 s of quiet noise with a loud burst from 30 s to 32 s."""
    rng = np.random.default_rng(5)
    x = _noise(rng, 0.1, 60.0)
    x[30 * SR:32 * SR] *= 2.5  # loud, not clipped (a clipped stretch is a sensor problem)
    path = tmp_path_factory.mktemp("long") / "monitor.wav"
    sf.write(path, x, SR)
    return path


def test_long_recording_in_windows(trained, long_wav, tmp_path, monkeypatch):
    run, _ = trained
    sizes: list[int] = []
    det_cls = type(load_run_detector(run, "fan"))
    original = det_cls.score_signals

    def spy(self, signals, sr, context=None):
        sizes.append(len(signals))
        assert context is not None  # the command's run context, passed explicitly
        return original(self, signals, sr, context)

    monkeypatch.setattr(det_cls, "score_signals", spy)
    result = pipeline.score_long_recording(run.root, long_wav, window=2.0, hop=2.0,
                                           machine="fan", out=tmp_path, batch_windows=8)
    assert result.windows == 30
    assert max(sizes) <= 8, "windows must be scored in bounded batches"
    frame = pd.read_csv(result.csv_path)
    assert list(frame.columns) == ["start_s", "end_s", "score", "threshold", "decision",
                                   "percentile", "status", "status_reason"]
    assert len(frame) == 30 and (frame["status"] == "ok").all()
    np.testing.assert_allclose(frame["start_s"], np.arange(0, 60, 2.0))
    np.testing.assert_allclose(frame["end_s"] - frame["start_s"], 2.0)
    assert frame.loc[frame["score"].idxmax(), "start_s"] == 30.0, "the burst scores highest"
    assert (frame["decision"] == (frame["score"] > frame["threshold"])).all()
    assert frame.loc[frame["start_s"] == 30.0, "decision"].item() == 1
    assert frame.loc[frame["start_s"] == 30.0, "percentile"].item() == 100.0
    # the burst is one event with its peak; CSV and JSON agree
    burst = [e for e in result.events if e.start_s <= 30.0 < e.end_s]
    assert len(burst) == 1 and burst[0].peak_s == 30.0
    events = pd.read_csv(result.events_csv)
    assert list(events.columns) == ["start_s", "end_s", "duration_s", "peak_s", "peak_score",
                                    "windows"]
    assert len(events) == len(result.events)
    saved = json.loads(result.events_json.read_text())
    assert saved["machine"] == "fan" and saved["threshold"] == pytest.approx(result.threshold)
    assert [e["start_s"] for e in saved["events"]] == [e.start_s for e in result.events]
    assert result.png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_long_recording_counts_a_last_half_window(trained, long_wav, tmp_path):
    run, _ = trained
    result = pipeline.score_long_recording(run.root, long_wav, window=8.0, hop=18.0,
                                           machine="pump", out=tmp_path, plot=False)
    # full windows start at 0, 18, 36; the one at 54 s holds 6 s >= half a window
    assert result.windows == 4
    assert result.starts == (0.0, 18.0, 36.0, 54.0)
    assert result.ends[-1] == pytest.approx(60.0)
    assert result.png_path is None


def test_long_recording_needs_a_machine_when_several(trained, long_wav, tmp_path):
    run, _ = trained
    with pytest.raises(ConfigError, match="pick one"):
        pipeline.score_long_recording(run.root, long_wav, 1.0, 1.0, out=tmp_path)
    with pytest.raises(DetectorError, match="no detector for machine 'valve'"):
        pipeline.score_long_recording(run.root, long_wav, 1.0, 1.0, machine="valve", out=tmp_path)
    with pytest.raises(ConfigError, match="positive"):
        pipeline.score_long_recording(run.root, long_wav, 0.0, 1.0, machine="fan", out=tmp_path)


def test_window_longer_than_the_recording_is_an_error(trained, long_wav, tmp_path):
    run, _ = trained
    with pytest.raises(ConfigError, match=r"--window: 61 s is longer than .*monitor.wav"):
        pipeline.score_long_recording(run.root, long_wav, 61.0, 1.0, machine="fan",
                                      out=tmp_path / "w")
    assert not (tmp_path / "w").exists(), "nothing written"
    # exactly as long as the file: one window
    one = pipeline.score_long_recording(run.root, long_wav, 60.0, 60.0, machine="fan",
                                        out=tmp_path / "w", plot=False)
    assert one.windows == 1


def test_long_recording_default_folder_is_new_each_time(trained, long_wav):
    run, _ = trained
    first = pipeline.score_long_recording(run.root, long_wav, 10.0, 10.0, machine="fan",
                                          plot=False)
    second = pipeline.score_long_recording(run.root, long_wav, 10.0, 10.0, machine="fan",
                                           plot=False)
    assert first.csv_path.parent != second.csv_path.parent
    assert first.csv_path.parent.parent == run.scores_dir
    assert first.csv_path.is_file() and second.csv_path.is_file()


def test_missing_split_gets_assigned(tmp_path):
    """MIMII raw clips have no split: train() assigns one (normal train, rest test)."""
    rng = np.random.default_rng(1)
    for folder, amp, count in (("normal", 0.1, 8), ("abnormal", 0.6, 2)):
        for i in range(count):
            path = tmp_path / "data" / "fan" / "id_00" / folder / f"{i:08d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, _noise(rng, amp), SR)
    run = pipeline.train(tmp_path / "data", DETECTOR, out=tmp_path / "r", params=FAST)
    table = pipeline.score(run.root)
    train = read_scores_table(run.train_scores_path)
    assert set(train["path"]).isdisjoint(table["path"])
    assert (table["label"] == 1).sum() == 2


def test_cache_dir_is_used(dataset, tmp_path):
    cache = tmp_path / "cache"
    pipeline.train(dataset, DETECTOR, machines=["pump"], out=tmp_path / "r", params=FAST,
                   context=RunContext(cache_dir=str(cache)))
    assert any(p.suffix == ".npy" for p in cache.rglob("*")), os.listdir(cache)


def test_run_settings_travel_in_a_context_not_in_params(tmp_path):
    from soundwatch.config import RunConfig

    cfg = RunConfig(DETECTOR, {"scorer__max_rows": 9}, seed=4, device="cpu")
    det = pipeline.make_detector(cfg)
    assert det.seed == 4 and det.scorer_params == {"max_rows": 9}
    assert not {"cache_dir", "device", "log_dir", "checkpoint_dir", "resume", "progress"} & set(
        det.get_params(deep=True))
    ctx = pipeline.run_context(cfg, cache_dir="c", log_dir=tmp_path, resume=True)
    assert (ctx.device, ctx.cache_dir, ctx.log_dir, ctx.resume) == ("cpu", "c", str(tmp_path),
                                                                   True)


def test_no_detector_means_the_recommended_default():
    from soundwatch.detectors.presets import DEFAULT_DETECTOR

    cfg = pipeline.resolve_config(None)
    assert cfg.detector == DEFAULT_DETECTOR


AE_TINY = {"frontend_params": {"n_mels": 16, "n_frames": 3}, "epochs": 2,
           "encoder_params": {"hidden": 16, "n_hidden": 2, "latent_dim": 4}}


def test_refit_swaps_the_scorer_and_keeps_the_network(dataset, tmp_path):
    import torch

    run = pipeline.train(dataset, "ae", machines=["fan"], out=tmp_path / "ae", params=AE_TINY,
                         device="cpu")
    new = pipeline.refit(run.root, tmp_path / "ae-maha",
                         {"scorer": "selective_mahalanobis", "scorer__variant": "baseline"},
                         no_cache=True)
    old_det, new_det = load_run_detector(run, "fan"), load_run_detector(new, "fan")
    assert (old_det.scorer, new_det.scorer) == ("mse", "selective_mahalanobis")
    assert new_det.scorer_params == {"variant": "baseline"}
    for (k, a), (_, b) in zip(old_det.network_.state_dict().items(),
                              new_det.network_.state_dict().items(), strict=True):
        assert torch.equal(a, b), k  # the trained network is kept as it is
    assert new_det.threshold_ != old_det.threshold_
    assert new.config().params["scorer"] == "selective_mahalanobis"
    assert read_scores_table(new.train_scores_path)["machine"].unique().tolist() == ["fan"]
    assert not (run.root / "detector" / "fan" / "config.json").read_text() == (
        new.root / "detector" / "fan" / "config.json").read_text()


def test_refit_refuses_changes_that_need_training(dataset, tmp_path):
    run = pipeline.train(dataset, "ae", machines=["fan"], out=tmp_path / "ae", params=AE_TINY,
                         device="cpu")
    with pytest.raises(DetectorError, match="retrain"):
        pipeline.refit(run.root, tmp_path / "x", {"encoder__latent_dim": 2}, no_cache=True)
    with pytest.raises(ConfigError):  # an existing run is never overwritten
        pipeline.refit(run.root, run.root, {"scorer": "knn"}, no_cache=True)


def test_train_writes_one_training_scores_part_per_machine(trained):
    run, _ = trained
    parts = sorted(p.stem for p in (run.scores_dir / "train_parts").glob("*.csv"))
    assert parts == ["fan", "pump"]
    merged = read_scores_table(run.train_scores_path)
    assert sorted(merged["machine"].unique()) == parts


def test_train_records_a_self_check_per_machine(trained, monkeypatch, capsys):
    import sys

    from soundwatch.cli import main

    run, _ = trained
    info = json.loads((run.root / "run.json").read_text())
    check = info["machines"]["fan"]["self_check"]
    assert check["clips"] == 6 and check["clips_measured"] == 6
    assert check["members"] == 0 and check["member_agreement"] is None  # one detector
    table = read_scores_table(run.train_scores_path)
    fan = table[table["machine"] == "fan"]
    assert check["false_alarms"] == int((fan["score"] > fan["threshold"]).sum())
    assert check["trust"] == "low" and "Only 6 normal training clip(s)" in check["warnings"][0]
    monkeypatch.setattr(sys, "argv", ["soundwatch", "inspect", str(run.root)])
    monkeypatch.setenv("COLUMNS", "200")
    try:
        main()
    except SystemExit as exc:
        assert not exc.code
    out = capsys.readouterr().out
    assert "self-check" in out and "n/a (single detector)" in out
    assert "fan: Only 6 normal training clip(s)" in out


def test_long_recording_scoring_gets_its_report(trained, long_wav):
    from soundwatch.evaluation.windows_report import find_windowed_scoring, write_windowed_report

    run, _ = trained
    result = pipeline.score_long_recording(run.root, long_wav, window=2.0, hop=2.0,
                                           machine="fan", plot=False)
    found = find_windowed_scoring(run.root)  # the newest scoring of the run
    assert found is not None and found[1] == result.csv_path.parent
    page = write_windowed_report(*found).read_text()
    n = len(result.events)
    assert n >= 1 and f"{n} anomalous event(s) in 1 long recording(s)" in page
    assert page.count('src="data:audio/') == n  # a player per event
    assert "monitor.wav" in page and '<svg class="timeline"' in page
    assert "Only 6 normal training clip(s)" in page  # the machine's self-check


class _CountingExecutor(pipeline.LocalExecutor):
    """The local executor, counting what the pipeline hands it."""

    name = "counting"
    scores_ahead = True

    def __init__(self) -> None:
        self.trained: list[str] = []
        self.scored: list[str] = []

    def train_machines(self, run, job, work, on_machine=None):
        self.trained += list(work)
        return super().train_machines(run, job, work, on_machine)

    def score_machines(self, run, work, *, skip_bad, device, progress):
        self.scored += list(work)
        return {}  # nothing scored ahead: the pipeline scores them itself


def test_the_pipeline_runs_its_work_on_the_executor_given(dataset, tmp_path):
    executor = _CountingExecutor()
    run = pipeline.train(dataset, DETECTOR, machines=["fan"], out=tmp_path / "r", params=FAST,
                         executor=executor)
    assert executor.trained == ["fan"] and run.info["failed"] == {}
    table = pipeline.score(run.root, executor=executor)
    assert executor.scored == ["fan"] and len(table) == 6
    pipeline.score(run.root, executor=executor, out=table.attrs["scores_dir"])
    assert executor.scored == ["fan"], "a finished machine type is not handed over again"
