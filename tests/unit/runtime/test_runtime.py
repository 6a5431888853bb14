"""soundwatch.runtime scores an export with onnxruntime and numpy only, as the library does."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("onnx", reason="the [export] extra (onnx) is not installed")
pytest.importorskip("onnxruntime", reason="the [export] extra (onnxruntime) is not installed")

import torch  # noqa: E402
from torch import nn  # noqa: E402

import soundwatch.runtime  # noqa: E402
from soundwatch.decisions import percentile_of  # noqa: E402
from soundwatch.detectors.pooling import pool  # noqa: E402
from soundwatch.detectors.scorers import create_scorer  # noqa: E402
from soundwatch.errors import AudioError, ConfigError  # noqa: E402
from soundwatch.export.frontend import frontend_graph  # noqa: E402
from soundwatch.export.writer import ExportParts, write_export  # noqa: E402
from soundwatch.features import create_frontend  # noqa: E402

SR = 16000
FE = {"n_mels": 32, "n_fft": 512, "hop_length": 256}


def _clip(rng, anomaly: bool, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))
    if anomaly:
        x += 0.2 * np.sin(2 * np.pi * 3100 * t)
    return x.astype(np.float32)


class _Rows(nn.Module):
    """Log-mel [B, M, F] -> frame rows [B, F, M] (a classical detector's items)."""

    def __init__(self) -> None:
        super().__init__()
        self.fe = frontend_graph("logmel", FE)

    def forward(self, x):
        return self.fe(x).transpose(1, 2)


def _torch_items(signals):
    fe = create_frontend("logmel", **FE)
    with torch.no_grad():
        return [fe(torch.from_numpy(s)[None])[0].numpy().T for s in signals]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A hand-built mean-pooled Mahalanobis pipeline, exported."""
    rng = np.random.default_rng(0)
    train = [_clip(rng, False) for _ in range(12)]
    scorer = create_scorer("mahalanobis")
    pooled = [pool("mean", i) for i in _torch_items(train)]
    scorer.fit(pooled, ["source"] * len(pooled))
    train_scores = scorer.score(pooled)
    out = tmp_path_factory.mktemp("export") / "toy"
    parts = ExportParts(
        graph=_Rows(), sample_rate=SR, view="vectors", pooling=("mean", {}), scorer=scorer,
        threshold=(float(np.quantile(train_scores, 0.9)), "gamma"), train_scores=train_scores,
        info={"detector": {"name": "hand-built", "params": {}}},
    )
    write_export(out, parts)
    return out, scorer, train_scores


def test_runtime_matches_library_scores(exported, tmp_path):
    out, scorer, train_scores = exported
    rng = np.random.default_rng(1)
    test = [_clip(rng, bool(i % 2), seconds=1.0 + 0.25 * (i % 3)) for i in range(6)]
    ref = scorer.score([pool("mean", i) for i in _torch_items(test)])
    det = soundwatch.runtime.load(out)
    got = det.score(test)
    np.testing.assert_allclose(got, ref, rtol=1e-4)
    assert got[1::2].min() > got[0::2].max()  # the anomalies stand out
    np.testing.assert_array_equal(det.predict(test), (ref > det.threshold).astype(int))
    np.testing.assert_array_equal(det.percentile(got), percentile_of(train_scores, got))
    # WAV files score as their arrays do
    paths = []
    for i, x in enumerate(test[:2]):
        paths.append(tmp_path / f"c{i}.wav")
        sf.write(paths[-1], x, SR, subtype="FLOAT")
    np.testing.assert_allclose(det.score(paths), got[:2], rtol=1e-6)


def test_other_sample_rates_are_resampled(exported):
    det = soundwatch.runtime.load(exported[0])
    rng = np.random.default_rng(2)
    x = _clip(rng, True, seconds=1.5)
    import soxr

    x32 = soxr.resample(x, SR, 32000).astype(np.float32)
    native = det.score([x])[0]
    resampled = det.score([x32], sr=32000)[0]
    assert resampled == pytest.approx(native, rel=0.05)


def test_bad_inputs_raise_one_line_errors(exported, tmp_path):
    det = soundwatch.runtime.load(exported[0])
    with pytest.raises(AudioError, match="signal 0"):
        det.score([np.full(1000, np.nan, np.float32)])
    with pytest.raises(AudioError, match="1-D"):
        det.score([np.zeros((2, 3, 4), np.float32)])
    (tmp_path / "bad.wav").write_text("not audio")
    with pytest.raises(AudioError, match="bad.wav"):
        det.score([tmp_path / "bad.wav"])
    with pytest.raises(ConfigError, match="manifest.json"):
        soundwatch.runtime.load(tmp_path)
    with pytest.raises(ConfigError, match="no such export folder"):
        soundwatch.runtime.load(tmp_path / "nothing")


def test_manifest_is_complete_and_state_has_no_pickles(exported):
    out = exported[0]
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("sample_rate", "opset", "soundwatch_version", "scorer", "threshold", "model"):
        assert key in manifest
    assert manifest["opset"] >= 17
    with np.load(out / "scorer.npz", allow_pickle=False) as arrays:
        assert arrays.files
    import onnx

    onnx.checker.check_model(str(out / "model.onnx"))


def test_runtime_never_imports_torch(exported):
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        import soundwatch.runtime
        det = soundwatch.runtime.load({str(exported[0])!r})
        t = np.arange(16000) / 16000
        s = det.score([(0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)])
        det.predict([np.zeros(16000, np.float32) + 0.01]); det.percentile(s)
        heavy = [m for m in ("torch", "sklearn", "scipy", "librosa", "lightning")
                 if m in sys.modules]
        assert not heavy, heavy
        print(float(s[0]))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert np.isfinite(float(res.stdout.strip().splitlines()[-1]))


def test_command_line_scores_files_without_torch(exported, tmp_path):
    rng = np.random.default_rng(5)
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"c{i}.wav")
        sf.write(paths[-1], _clip(rng, bool(i)), SR, subtype="FLOAT")
    res = subprocess.run(
        [sys.executable, "-c", "import sys; from soundwatch.runtime.__main__ import main; "
         "rc = main(sys.argv[1:]); assert 'torch' not in sys.modules; sys.exit(rc)",
         str(exported[0]), *map(str, paths)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[0] == ("path,machine,section,score,threshold,decision,percentile,status,"
                        "status_reason")
    assert len(lines) == 3
    det = soundwatch.runtime.load(exported[0])
    expected = det.score(paths)
    got = [float(line.split(",")[3]) for line in lines[1:]]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    res = subprocess.run([sys.executable, "-m", "soundwatch.runtime", str(tmp_path),
                          str(paths[0])], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.startswith("error: ") and "manifest.json" in res.stderr


def test_missing_packages_give_the_install_hint(exported, monkeypatch):
    from soundwatch.export.hints import require

    with pytest.raises(ConfigError, match=r"no_such_package_xyz: not installed; .*"
                                          r"soundwatch\[export\]"):
        require("no_such_package_xyz")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if missing
    with pytest.raises(ConfigError, match="onnxruntime: not installed; install onnxruntime"):
        soundwatch.runtime.load(exported[0])


def _rows(text: str) -> list[dict[str, str]]:
    import csv
    import io

    return list(csv.DictReader(io.StringIO(text)))


def test_a_bad_file_gets_an_error_row_and_the_batch_goes_on(exported, tmp_path, capsys):
    from soundwatch.runtime.__main__ import EXIT_ROW_FAILED, main

    rng = np.random.default_rng(6)
    good = [tmp_path / "good.wav", tmp_path / "good2.wav"]
    for i, path in enumerate(good):
        sf.write(path, _clip(rng, bool(i)), SR, subtype="FLOAT")
    garbage = tmp_path / "garbage.wav"
    garbage.write_text("not audio at all")
    files = [good[0], garbage, good[1]]
    assert main([str(exported[0]), *map(str, files)]) == EXIT_ROW_FAILED == 1
    out, err = capsys.readouterr()
    rows = _rows(out)
    assert [r["path"] for r in rows] == [str(p) for p in files], "one row per file, in order"
    assert [r["status"] for r in rows] == ["ok", "error", "ok"]
    assert "garbage.wav" in rows[1]["status_reason"] and "not audio" in rows[1]["status_reason"]
    assert rows[1]["score"] == rows[1]["decision"] == ""
    det = soundwatch.runtime.load(exported[0])
    ref = det.score(good)
    np.testing.assert_allclose([float(rows[0]["score"]), float(rows[2]["score"])], ref,
                               rtol=1e-5)
    for row, value in zip((rows[0], rows[2]), ref, strict=True):  # the CLI's columns
        assert float(row["threshold"]) == pytest.approx(det.threshold, rel=1e-5)
        assert int(row["decision"]) == int(value > det.threshold)
        assert float(row["percentile"]) == pytest.approx(det.percentile([value])[0], abs=0.05)
    assert err.strip().splitlines() == [
        "error: 1 of 3 file(s) could not be scored (status 'error' rows)"]
    assert main([str(exported[0]), str(good[0])]) == 0


def test_channel_is_read_from_the_manifest_or_overridden(exported, tmp_path, capsys):
    from soundwatch.runtime.__main__ import main

    rng = np.random.default_rng(8)
    quiet, loud = _clip(rng, False), _clip(rng, True)
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([quiet, loud], axis=1), SR, subtype="FLOAT")
    det = soundwatch.runtime.load(exported[0])
    assert det.channel == 0
    on_right = soundwatch.runtime.load(exported[0], channel=1).score([stereo])[0]
    assert on_right == pytest.approx(det.score([loud])[0], rel=1e-5)
    assert det.score([stereo])[0] == pytest.approx(det.score([quiet])[0], rel=1e-5)
    assert main([str(exported[0]), str(stereo), "--channel", "1"]) == 0
    assert float(_rows(capsys.readouterr().out)[0]["score"]) == pytest.approx(on_right,
                                                                              rel=1e-5)
    assert main([str(exported[0]), str(stereo), "--channel", "5"]) == 1
    row = _rows(capsys.readouterr().out)[0]
    assert row["status"] == "error" and "channel 5 asked for, file has 2" in row["status_reason"]
    assert main([str(exported[0]), str(stereo), "--channel", "left"]) == 2
    assert "--channel" in capsys.readouterr().err
