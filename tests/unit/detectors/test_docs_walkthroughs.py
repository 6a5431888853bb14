"""The walkthroughs of docs/detectors.md run as written (an encoder, a front-end, a scorer, a
part kind).

Each test restores the registries afterwards, so that what a walkthrough registers never
reaches another test (the registry listings compare against a fresh process), whatever
the order the tests run in.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "detectors.md"


def _code_blocks(marker: str) -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"<!-- walkthrough: {marker} -->")
    end = text.find("<!-- walkthrough:", start + 10)
    section = text[start : end if end > 0 else None]
    section = section.split("\n## Training engine")[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def _blocks(marker: str) -> str:
    return "\n\n".join(_code_blocks(marker))


def _run_as_module(code: str, name: str) -> None:
    """Execute ``code`` as an importable module (dataclasses need their module registered)."""
    import sys
    import types

    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(code, str(DOC), "exec"), module.__dict__)


@pytest.fixture()
def toy(toy_set):
    """The toy clips, with every registry restored after the test (see the module doc)."""
    from soundwatch.detectors import DETECTORS
    from soundwatch.detectors.encoders import ENCODERS
    from soundwatch.detectors.objectives import OBJECTIVES
    from soundwatch.detectors.parts import PARTS
    from soundwatch.detectors.pooling import POOLINGS
    from soundwatch.detectors.scorers import SCORERS
    from soundwatch.features.frontends import FRONTENDS

    registries = (FRONTENDS, ENCODERS, OBJECTIVES, POOLINGS, SCORERS, DETECTORS)
    for registry in registries:
        registry.names()  # built-ins and plugins loaded first: the snapshot holds them
    saved = [dict(registry._entries) for registry in registries]
    parts = dict(PARTS)
    modules = set(sys.modules)
    yield toy_set
    for registry, entries in zip(registries, saved, strict=True):
        registry._entries.clear()
        registry._entries.update(entries)
    PARTS.clear()
    PARTS.update(parts)
    for name in set(sys.modules) - modules:
        if name.startswith("walkthrough_"):
            del sys.modules[name]


def test_add_a_detector_walkthrough(toy, tmp_path):
    code = _blocks("add-detector")
    assert "register_encoder" in code and "register_detector" in code
    _run_as_module(code, "walkthrough_detector")
    from soundwatch.detectors import Detector, create_detector, list_detectors
    from soundwatch.detectors.encoders import list_encoders

    assert "tinyconv" in list_encoders()
    assert "tinyconv-ae" in list_detectors()
    other = create_detector("cnn1d", encoder="tinyconv")  # any composition can use it
    assert other.part("encoder").name == "tinyconv" and other.encoder_params is None
    det = create_detector("tinyconv-ae", training__epochs=1).fit(toy.train)
    scores = det.score(toy.test)
    assert scores.shape == (len(toy.test),) and np.all(np.isfinite(scores))
    # the same network with another scorer of an offered view
    assert np.all(np.isfinite(create_detector("tinyconv-ae", training__epochs=1, scorer="mse")
                              .fit(toy.train).score(toy.test)))
    loaded = Detector.load(det.save(tmp_path / "tiny"))
    np.testing.assert_array_equal(loaded.score(toy.test), scores)


def test_add_a_frontend_walkthrough(toy):
    code = _blocks("add-frontend")
    assert "register_frontend" in code
    _run_as_module(code, "walkthrough_frontend")
    from soundwatch.detectors import create_detector
    from soundwatch.features import create_frontend, list_frontends

    assert "envelope" in list_frontends()
    fe = create_frontend("envelope", frame=256)
    assert tuple(fe(np.zeros((2, 16000), np.float32)).shape) == (2, 1, 62)
    det = create_detector("mahalanobis", frontend="envelope").fit(toy.train)
    assert np.all(np.isfinite(det.score(toy.test)))


def test_add_a_scorer_walkthrough(toy, tmp_path):
    code = _blocks("add-scorer")
    assert "register_scorer" in code
    _run_as_module(code, "walkthrough_scorer")
    from soundwatch.detectors import Detector, create_detector
    from soundwatch.detectors.scorers import list_scorers
    from soundwatch.errors import DetectorError

    assert "centroid" in list_scorers()
    det = create_detector("mahalanobis", scorer="centroid", scorer__power=2.0).fit(toy.train)
    scores = det.score(toy.test)
    assert scores.shape == (len(toy.test),) and np.all(scores >= 0)
    labels = np.array([c.label for c in toy.test])
    assert scores[labels == 1].mean() > scores[labels == 0].mean()  # it does detect
    assert det.train_scores_.shape == (len(toy.train),)  # out of fold, from the detector
    loaded = Detector.load(det.save(tmp_path / "centroid"))
    np.testing.assert_array_equal(loaded.score(toy.test), scores)
    with pytest.raises(DetectorError, match="power"):
        create_detector("mahalanobis", scorer="centroid", scorer__power=0)
    with pytest.raises(DetectorError, match="needs the 'residual' view"):
        create_detector("mahalanobis", scorer="mse")  # a view the composition lacks


def test_add_a_part_kind_walkthrough(toy, tmp_path):
    file_code, usage = _code_blocks("add-part-kind")  # the one file, then its use
    assert "register_part" in file_code and file_code.startswith("# calibrator.py")
    _run_as_module(file_code, "walkthrough_calibrator")
    exec(compile(usage, str(DOC), "exec"), {})
    from soundwatch.detectors import Detector, create_detector
    from soundwatch.detectors.normalize import normalize_scores

    raw = create_detector("mahalanobis").fit(toy.train)
    det = create_detector("mahalanobis", calibrator="normalize", calibrator__how="logz")
    det.fit(toy.train)
    np.testing.assert_allclose(det.train_scores_, normalize_scores(
        raw.train_scores_, raw.train_scores_, "logz"))
    scores = det.score(toy.test)
    np.testing.assert_allclose(scores, normalize_scores(raw.score(toy.test),
                                                        raw.train_scores_, "logz"))
    out = det.save(tmp_path / "calibrated")
    with np.load(out / "state.npz", allow_pickle=False) as arrays:
        np.testing.assert_array_equal(arrays["calibrator/reference"], raw.train_scores_)
    loaded = Detector.load(out)
    np.testing.assert_array_equal(loaded.score(toy.test), scores)
    from soundwatch.errors import DetectorError

    with pytest.raises(DetectorError, match="calibrator normalize.how: 'cube' is not one of"):
        create_detector("mahalanobis", calibrator="normalize", calibrator__how="cube")


def test_a_part_kind_file_as_a_plugin_trains_from_the_command_line(tmp_path):
    """The walkthrough's file installed as a plugin (entry point ``soundwatch.part_kinds``):
    ``soundwatch train -d mahalanobis -p calibrator=normalize`` in a fresh process."""
    file_code = _code_blocks("add-part-kind")[0]
    plugin = tmp_path / "plugin"
    (plugin / "sw_calibrator-0.1.dist-info").mkdir(parents=True)
    (plugin / "sw_calibrator.py").write_text(file_code, encoding="utf-8")
    (plugin / "sw_calibrator-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: sw-calibrator\nVersion: 0.1\n")
    (plugin / "sw_calibrator-0.1.dist-info" / "entry_points.txt").write_text(
        "[soundwatch.part_kinds]\ncalibrator = sw_calibrator\n")
    script = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        import numpy as np, soundfile as sf
        from soundwatch.cli import main
        data, run = Path({str(tmp_path / "data")!r}), Path({str(tmp_path / "run")!r})
        rng = np.random.default_rng(0)
        for i in range(6):
            path = data / "pump" / "normal" / f"n{{i}}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, (0.1 * rng.standard_normal(8000)).astype(np.float32), 16000)
        sys.argv = ["soundwatch", "train", str(data), "-d", "mahalanobis", "-p",
                    "calibrator=normalize", "-p", "calibrator__how=logz", "--no-cache",
                    "--out", str(run)]
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, exc.code
        from soundwatch.detectors import Detector
        (config,) = run.glob("**/config.json")
        det = Detector.load(config.parent)
        print(json.dumps(det.parts))
    """)
    src = Path(__file__).resolve().parents[3] / "src"
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(plugin), str(src)])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "calibrator": {"name": "normalize", "params": {"how": "logz"}}}
