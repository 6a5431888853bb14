"""Every registered detector honours the Detector contract and scikit-learn's estimator checks.

Fitted detectors are cached per module (fitting is the slow part); tests that change a
detector make their own.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from soundwatch.detectors import (
    Detector,
    create_detector,
    describe_detectors,
    get_detector_class,
    list_detectors,
)
from soundwatch.detectors.base import FORMAT_VERSION
from soundwatch.errors import DetectorError
from soundwatch.training.context import RunContext

NAMES = list_detectors()
COMPOSED = [n for n in NAMES if type(create_detector(n)).__name__ == "ComposedDetector"]
STATE_FILES = ("config.json", "state.npz", "weights.pt")
RUN_KEYS = {"wall_s", "time_s", "device", "precision", "cache_dir", "log_dir",
            "checkpoint_dir", "resume", "progress", "in_memory_mb"}


def _test_params(name: str) -> dict:
    return dict(get_detector_class(name).test_params)


def _make(name: str, **extra) -> Detector:
    return create_detector(name, **{**_test_params(name), **extra})


def _train(det: Detector, toy_set) -> list:
    return toy_set.train_labelled if det.supervised else toy_set.train


@pytest.fixture(scope="module")
def fitted(toy_set):
    """``fitted(name)``: the detector fitted once on the toy set with its test params."""
    cache: dict[str, Detector] = {}

    def get(name: str) -> Detector:
        if name not in cache:
            det = _make(name)
            cache[name] = det.fit(_train(det, toy_set))
        return cache[name]

    return get


def _one_line_error(info: pytest.ExceptionInfo, *fragments: str) -> None:
    """A user-facing error: one line with the fragments in it (its cause may be chained with
    ``from exc`` for maintainers; the CLI prints the message alone, tests/unit/cli)."""
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


# ----------------------------------------------------------------- the registry


def test_registry_lists_the_built_in_detectors():
    for name in ("ae", "vae1d", "unet1d-ae", "gmm", "knn", "mahalanobis", "cnn1d",
                 "wavevision"):
        assert name in NAMES
    assert NAMES == sorted(NAMES)
    descriptions = describe_detectors()
    assert set(descriptions) == set(NAMES)
    assert all(descriptions[n] for n in NAMES)
    assert all(isinstance(get_detector_class(n).test_params, dict) for n in NAMES)


def test_unknown_detector_name_lists_the_known_ones():
    with pytest.raises(DetectorError, match="unknown detector.*known: .*knn") as info:
        create_detector("no-such-detector")
    _one_line_error(info, "no-such-detector")


@pytest.mark.parametrize("name", NAMES)
def test_unknown_param_raises(name):
    with pytest.raises(DetectorError, match="no_such_param"):
        create_detector(name, no_such_param=1)
    with pytest.raises(DetectorError, match="no_such_param"):
        create_detector(name, scorer__no_such_param=1)
    with pytest.raises(DetectorError, match="unknown parameter 'nopart__x'"):
        create_detector(name, nopart__x=1)


@pytest.mark.parametrize("name", NAMES)
def test_test_params_are_applied_and_params_round_trip(name):
    det = _make(name)
    deep = det.get_params(deep=True)
    for key, value in _test_params(name).items():
        if isinstance(value, dict):  # a part's params dict refines the preset's
            assert value.items() <= deep[key].items(), key
        else:
            assert deep[key] == value, key
    params = det.get_params(deep=False)
    json.dumps(params)  # saved in config.json
    assert create_detector(name, **params).get_params(deep=True) == deep
    assert not det.is_fitted and det.name == name


@pytest.mark.parametrize("name", NAMES)
def test_score_before_fit_raises(name, toy_set):
    det = _make(name)
    with pytest.raises(DetectorError, match="not fitted"):
        det.score(toy_set.test[:1])
    with pytest.raises(DetectorError, match="not fitted"):
        det.predict(toy_set.test[:1])
    with pytest.raises(DetectorError, match="not fitted"):
        det.save(Path("never-written"))
    assert not Path("never-written").exists()


def test_fit_without_clips_raises():
    with pytest.raises(DetectorError, match="no training clips"):
        _make("knn").fit([])


# ----------------------------------------------------------------- fit / score / save / load


@pytest.mark.parametrize("name", NAMES)
def test_fit_score_save_load(name, fitted, toy_set, tmp_path):
    det = fitted(name)
    assert det.is_fitted
    assert all(k.endswith("_") for k in det.fitted_attributes())

    scores = det.score(toy_set.test)
    assert scores.shape == (len(toy_set.test),) and scores.dtype == np.float64
    assert np.all(np.isfinite(scores))
    np.testing.assert_array_equal(det.score(toy_set.test), scores)  # scoring is repeatable
    assert det.score([]).shape == (0,)

    out = det.save(tmp_path / "saved")
    config = json.loads((out / "config.json").read_text())
    assert config["name"] == name and config["class"] == type(det).__name__
    assert config["format_version"] == FORMAT_VERSION
    assert isinstance(config["params"], dict)
    assert config["params"] == json.loads(json.dumps(det.get_params(deep=False)))
    assert "soundwatch_version" in config
    names = {p.name for p in out.iterdir() if p.is_file()}
    if name in COMPOSED:
        assert names == ({"config.json", "state.npz", "weights.pt"} if det.encoder
                         else {"config.json", "state.npz"})

    loaded = Detector.load(out)
    assert type(loaded) is type(det) and loaded.name == name
    assert loaded.get_params(deep=True) == json.loads(json.dumps(det.get_params(deep=True)))
    assert loaded.threshold_ == det.threshold_
    np.testing.assert_array_equal(loaded.train_scores_, det.train_scores_)
    np.testing.assert_array_equal(loaded.score(toy_set.test), scores)
    np.testing.assert_array_equal(loaded.predict(toy_set.test), det.predict(toy_set.test))


@pytest.mark.parametrize("name", NAMES)
def test_saved_state_has_no_pickles(name, fitted, tmp_path):
    import torch

    det = fitted(name)
    det.save(tmp_path / "d")
    with np.load(tmp_path / "d" / "state.npz", allow_pickle=False) as arrays:
        keys = set(arrays.files)
    assert "train_scores" in keys
    if name in COMPOSED:
        assert {k for k in keys if k != "train_scores"} == {f"scorer/{k}"
                                                            for k in det.scorer_.state()}
    files = [p for p in (tmp_path / "d").rglob("*") if p.is_file()]
    for path in files:  # members of an ensemble are saved in sub-folders
        if path.suffix == ".npz":
            np.load(path, allow_pickle=False).close()
        elif path.suffix == ".pt":
            state = torch.load(path, weights_only=True)
            assert state and all(isinstance(v, torch.Tensor) for v in state.values())
        else:
            assert path.name == "config.json", path


def _walk(value, path=()):
    """Every (key path, leaf value) of a JSON document."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _walk(inner, (*path, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _walk(inner, (*path, i))
    else:
        yield path, value


def test_runtime_params_are_run_context_fields_and_the_seed_a_hyper_parameter():
    import dataclasses

    from soundwatch.pipeline import RUNTIME_PARAMS, TOP_LEVEL_PARAMS

    assert set(RUNTIME_PARAMS) == {f.name for f in dataclasses.fields(RunContext)}
    assert not set(RUNTIME_PARAMS) & set(TOP_LEVEL_PARAMS)  # the seed: a hyper-parameter only
    for name in NAMES:  # every detector takes the seed as a hyper-parameter
        assert set(TOP_LEVEL_PARAMS) <= set(create_detector(name).get_params(deep=False))


@pytest.mark.parametrize("name", NAMES)
def test_run_context_is_not_saved_and_files_are_deterministic(name, fitted, toy_set,
                                                              tmp_path):
    """Fitting with cache/log/checkpoint folders gives the same files as without them.

    The second fit also shows that fitting twice with the same seed gives byte-identical
    files, and that no machine path or clock value reaches them.
    """
    ctx = RunContext(device="cpu", cache_dir=str(tmp_path / "cache"),
                     log_dir=str(tmp_path / "log"), checkpoint_dir=str(tmp_path / "ckpt"))
    again = _make(name)
    again.fit(_train(again, toy_set), context=ctx)
    members = getattr(again, "members_", [])
    for det in (again, *members):  # the context is passed, never kept
        assert not any(isinstance(v, RunContext) for v in vars(det).values())
    a = fitted(name).save(tmp_path / "a")
    b = again.save(tmp_path / "b")
    config = json.loads((b / "config.json").read_text())
    for path, value in _walk(config):
        assert not RUN_KEYS & {str(k) for k in path}, path  # no run setting, no clock value
        if isinstance(value, str):
            assert not value.startswith(("/", "~")) and str(tmp_path) not in value, path
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    assert {p.name for p in files_a} <= set(STATE_FILES)
    for rel in files_b:
        assert str(tmp_path).encode() not in (b / rel).read_bytes(), rel
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


@pytest.mark.parametrize("name", NAMES)
def test_score_signals_matches_score(name, fitted, toy_set):
    import soundfile as sf

    det = fitted(name)
    signals = [sf.read(c.path, dtype="float32")[0] for c in toy_set.test[:3]]
    scores = det.score_signals(signals, 16000)
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    np.testing.assert_allclose(scores, det.score(toy_set.test[:3]), rtol=1e-3, atol=1e-4)
    assert det.score_signals([], 16000).shape == (0,)


def _snapshot(value, seen=None):
    """A deep, comparable picture of a value: arrays and tensors by content, modules by
    their weights and train/eval mode, objects by their attributes (check_dict_unchanged)."""
    import torch

    seen = set() if seen is None else seen
    if isinstance(value, (str, int, float, bool, type(None), Path)):
        return value
    if id(value) in seen:
        return ("<seen>", type(value).__name__)
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        return ("tensor", str(t.dtype), tuple(t.shape), str(value.device), t.numpy().tobytes())
    if isinstance(value, torch.nn.Module):
        return (type(value).__name__, [m.training for m in value.modules()],
                {k: _snapshot(v, seen) for k, v in value.state_dict(keep_vars=True).items()},
                [str(p.device) for p in value.parameters()])
    if isinstance(value, dict):
        return {k: _snapshot(v, seen) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_snapshot(v, seen) for v in value]
    if hasattr(value, "__dict__"):
        return (type(value).__name__, _snapshot(vars(value), seen))
    return (type(value).__name__, repr(value))


@pytest.mark.parametrize("name", NAMES)
def test_scoring_never_changes_the_detector(name, fitted, toy_set, tmp_path):
    import soundfile as sf

    signals = [sf.read(c.path, dtype="float32")[0] for c in toy_set.test[:2]]
    det = fitted(name)
    loaded = Detector.load(det.save(tmp_path / "d"))  # as a service loads it: nothing cached
    for candidate in (det, loaded):
        before = _snapshot(candidate.__dict__)
        candidate.score(toy_set.test[:2])
        candidate.score_signals(signals, 16000)
        candidate.predict(toy_set.test[:1])
        assert _snapshot(candidate.__dict__) == before
        assert set(vars(candidate)) == set(before)


# ----------------------------------------------------------------- decisions


@pytest.mark.parametrize("name", NAMES)
def test_threshold_train_scores_decision_function_and_predict(name, fitted, toy_set):
    det = fitted(name)
    n_normal = sum(1 for c in _train(det, toy_set) if not c.label)
    assert isinstance(det.threshold_, float) and np.isfinite(det.threshold_)
    assert det.train_scores_.shape == (n_normal,) and np.isfinite(det.train_scores_).all()
    np.testing.assert_array_equal(det.training_scores(), det.train_scores_)
    scores = det.score(toy_set.test)
    np.testing.assert_array_equal(det.decision_function(toy_set.test), scores)
    predicted = det.predict(toy_set.test)
    assert predicted.dtype == np.int64
    np.testing.assert_array_equal(predicted, (scores > det.threshold_).astype(np.int64))


# ----------------------------------------------------------------- scikit-learn's checks


@pytest.mark.parametrize("name", NAMES)
def test_sklearn_clone_gives_an_equal_unfitted_detector(name, fitted):
    from sklearn.base import clone

    for det in (_make(name), fitted(name)):
        twin = clone(det)
        assert type(twin) is type(det) and twin is not det
        assert twin.name == name
        assert twin.get_params(deep=True) == det.get_params(deep=True)
        assert not twin.is_fitted
        for key, value in det.get_params(deep=False).items():  # deep copies, not shared
            if isinstance(value, dict | list):
                assert twin.get_params(deep=False)[key] is not value, key


@pytest.mark.parametrize("name", NAMES)
def test_init_sets_nothing_but_the_params(name):
    det = _make(name)
    assert set(vars(det)) <= set(det.get_params(deep=False)) | {"_preset"}
    from soundwatch.detectors.composed import ComposedDetector

    plain = ComposedDetector()
    assert set(vars(plain)) == set(plain.get_params(deep=False))


@pytest.mark.parametrize("name", NAMES)
def test_fit_keeps_params_and_is_idempotent(name, fitted, toy_set):
    det = _make(name)
    before = copy.deepcopy(det.get_params(deep=True))
    clips = _train(det, toy_set)
    det.fit(clips)
    assert det.get_params(deep=True) == before  # fit does not overwrite params
    first = det.score(toy_set.test)
    threshold, train_scores = det.threshold_, det.train_scores_.copy()
    assert det.fit(clips) is det
    assert det.get_params(deep=True) == before
    np.testing.assert_array_equal(det.score(toy_set.test), first)
    assert det.threshold_ == threshold
    np.testing.assert_array_equal(det.train_scores_, train_scores)
    # and the same seed gives the same result as another fit of the same preset
    np.testing.assert_array_equal(fitted(name).score(toy_set.test), first)


# ----------------------------------------------------------------- nested params


@pytest.mark.parametrize("name", COMPOSED)
def test_deep_params_list_each_part_and_set_params_changes_it(name):
    det = _make(name)
    deep = det.get_params(deep=True)
    for part, dict_name in det._nested.items():
        for key, value in (getattr(det, dict_name) or {}).items():
            assert deep[f"{part}__{key}"] == value
    frontend = dict(det.frontend_params or {})
    key, value = ("n_mels", 20) if det.frontend != "waveform" else ("sr", 16000)
    det.set_params(**{f"frontend__{key}": value})
    assert det.frontend_params == {**frontend, key: value}
    assert det.get_params(deep=True)[f"frontend__{key}"] == value
    # a scorer parameter: aggregate where the scorer has it (selective_mahalanobis has not)
    key, value = (("aggregate", "max") if "aggregate" in det.part("scorer").accepted()
                  else ("max_rows", 1000))
    det.set_params(**{f"scorer__{key}": value})
    assert det.scorer_params[key] == value
    if det.encoder is not None and det.objective is not None:
        det.set_params(training__epochs=3)
        assert det.training["epochs"] == 3 and det.train_spec().epochs == 3
    else:  # nothing is trained: training parameters are refused
        with pytest.raises(DetectorError):
            det.set_params(training__epochs=3)


def test_bare_keys_go_to_the_one_part_that_has_them():
    det = create_detector("cnn1d", epochs=3, n_neighbors=2, margin="arcface", n_mels=20)
    assert det.training["epochs"] == 3
    assert det.scorer_params["n_neighbors"] == 2
    assert det.objective_params["margin"] == "arcface"
    assert det.frontend_params["n_mels"] == 20
    det.set_params(lr=0.01)
    assert det.training["lr"] == 0.01 and det.training["epochs"] == 3
    with pytest.raises(DetectorError, match="unknown parameter 'colour'"):
        det.set_params(colour="red")
    # a key of a part the composition does not use is unknown
    with pytest.raises(DetectorError, match="unknown parameter 'latent_dim'"):
        create_detector("knn", latent_dim=3)


def test_an_ambiguous_bare_key_names_both_parts(monkeypatch):
    from soundwatch.detectors.composed import ComposedDetector
    from soundwatch.detectors.pooling import POOLINGS

    def aggregated(items, aggregate="mean"):
        """Test pooling with a parameter the k-NN scorer also has."""
        return items.mean(axis=0)

    monkeypatch.setitem(POOLINGS._entries, "aggregated", aggregated)
    det = ComposedDetector(pooling="aggregated", scorer="knn")
    with pytest.raises(DetectorError, match="ambiguous: say pooling__aggregate or "
                                            "scorer__aggregate"):
        det.set_params(aggregate="max")
    det.set_params(scorer__aggregate="max")
    assert det.scorer_params == {"aggregate": "max"} and det.pooling_params is None


def test_switching_a_part_resets_its_params():
    det = create_detector("knn", scorer="gmm")
    assert det.scorer == "gmm" and det.scorer_params is None
    det = create_detector("knn", scorer="gmm", scorer__n_components=3)
    assert det.scorer_params == {"n_components": 3}
    det = create_detector("cnn1d", objective="synthetic")
    assert det.scorer == "probability"  # the objective's default scorer
    assert create_detector("cnn1d", objective="synthetic", scorer="knn").scorer == "knn"


@pytest.mark.parametrize(("name", "params", "fragment"), [
    ("knn", {"scorer__n_neighbors": 0}, "n_neighbors"),
    ("gmm", {"frontend": "nope"}, "frontend"),
    ("mahalanobis", {"frontend__n_mels": -3}, "n_mels"),
    ("ae", {"training__optimizer": "lbfgs"}, "optimizer"),
    ("ae", {"epochs": 0}, "epochs"),
    ("ae", {"training__batchsize": 4}, "batchsize"),
    ("vae1d", {"window_frames": 30}, "window_frames"),
    ("vae1d", {"window_frames": 0}, "window_frames"),
    ("cnn1d", {"seed": 1.5}, "seed"),
    ("cnn1d", {"scorer_params": [1, 2]}, "scorer_params"),
    ("cnn1d", {"objective": "contrastive"}, "contrastive"),
    ("knn", {"pooling": "median"}, "median"),
])
def test_invalid_param_values_raise(name, params, fragment):
    with pytest.raises(DetectorError, match=fragment) as info:
        create_detector(name, **params)
    _one_line_error(info)


def test_bad_encoder_values_are_refused_when_the_detector_is_made():
    # the encoder is built on a small stand-in input at creation, so its values fail at once
    with pytest.raises(DetectorError, match="huge") as info:
        _make("cnn1d", encoder__preset="huge")
    _one_line_error(info)


# ----------------------------------------------------------------- loading errors


def test_load_missing_folder_raises(tmp_path):
    with pytest.raises(DetectorError, match="config.json missing") as info:
        Detector.load(tmp_path / "nothing")
    _one_line_error(info, str(tmp_path / "nothing" / "config.json"))


def test_a_format_1_detector_gives_a_one_line_error(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "name": "knn", "class": "KNNDetector", "soundwatch_version": "0.1.0",
        "params": {"n_neighbors": 5, "features": "logmel", "cache_dir": "/tmp/x"},
    }))
    (folder / "state.npz").write_bytes(b"")
    with pytest.raises(DetectorError) as info:
        Detector.load(folder)
    _one_line_error(info, str(folder / "config.json"), "format 1", "soundwatch 0.1.0",
                    "retrain")


def test_a_newer_format_asks_for_an_upgrade(tmp_path):
    folder = tmp_path / "new"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"name": "knn", "format_version": 99}))
    with pytest.raises(DetectorError, match="format 99.*upgrade soundwatch") as info:
        Detector.load(folder)
    _one_line_error(info, str(folder / "config.json"))


@pytest.fixture
def saved(fitted, tmp_path):
    """``saved(name)``: a fresh copy of that fitted detector's folder."""

    def make(name: str) -> Path:
        return fitted(name).save(tmp_path / name)

    return make


def test_a_truncated_state_file_is_named(saved):
    folder = saved("knn")
    state = folder / "state.npz"
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    with pytest.raises(DetectorError) as info:
        Detector.load(folder)
    _one_line_error(info, str(state), "truncated or corrupted")


def test_a_state_file_without_the_scorer_arrays_is_named(saved):
    from soundwatch.detectors.base import write_npz

    folder = saved("mahalanobis")
    write_npz(folder / "state.npz", {"train_scores": np.zeros(3)})
    with pytest.raises(DetectorError) as info:
        Detector.load(folder)
    _one_line_error(info, str(folder / "state.npz"), "incomplete")


def test_a_missing_state_file_is_named(saved):
    folder = saved("gmm")
    (folder / "state.npz").unlink()
    with pytest.raises(DetectorError) as info:
        Detector.load(folder)
    _one_line_error(info, str(folder / "state.npz"), "missing")


@pytest.mark.parametrize("content", [b"", b"garbage, not a torch file" * 10])
def test_garbage_weights_are_named(saved, content):
    folder = saved("ae")
    (folder / "weights.pt").write_bytes(content)
    with pytest.raises(DetectorError) as info:
        Detector.load(folder)
    _one_line_error(info, str(folder / "weights.pt"))


def test_weights_of_another_network_are_named(saved):
    import torch

    folder = saved("ae")
    torch.save({"layer.weight": torch.zeros(2, 2)}, folder / "weights.pt")
    with pytest.raises(DetectorError, match="weights do not fit") as info:
        Detector.load(folder)
    _one_line_error(info, str(folder / "weights.pt"))


@pytest.mark.parametrize(("change", "fragment"), [
    ({"class": "KNNDetector"}, "unknown detector class 'KNNDetector'"),
    ({"params": {"colour": "red"}}, "bad parameters"),
    ({"params": {"scorer": "nope"}}, "invalid detector"),
    ({"params": "not a mapping"}, "'params' is not a mapping"),
    ({"name": None, "__drop_name": True}, "no 'name'"),
])
def test_a_bad_config_is_named(saved, change, fragment):
    folder = saved("knn")
    config = json.loads((folder / "config.json").read_text())
    if change.pop("__drop_name", False):
        del config["name"]
        change = {}
    config.update(change)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(DetectorError) as info:
        Detector.load(folder)
    _one_line_error(info, str(folder / "config.json"), fragment)


def test_a_config_that_is_not_json_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(DetectorError, match="cannot read") as info:
        Detector.load(tmp_path)
    _one_line_error(info, str(tmp_path / "config.json"))
