"""Part kinds added in a file of their own: params, clone, hooks, save/load, one-line errors.

The kinds are registered by a fixture and removed after each test, so no other test (the
registry listings, the contract test) ever sees them, whatever the order.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone

from soundwatch.detectors import Detector, create_detector
from soundwatch.detectors.parts import (
    BUILT_IN_PARTS,
    PARTS,
    AddedPart,
    Transform,
    added_kinds,
    register_part,
)
from soundwatch.errors import DetectorError
from soundwatch.registry import Registry

CALIBS: Registry[type[Transform]] = Registry("calib", error=DetectorError)
POSTS: Registry[type[Transform]] = Registry("post", error=DetectorError)


class CalibPart(AddedPart):
    """Test kind on the scores."""

    entries = CALIBS
    hook = "scores"


class PostPart(AddedPart):
    """Test kind on the scorer's items."""

    entries = POSTS
    hook = "items"

    def check_in(self, detector):
        if detector.part("scorer").needs != "vectors":
            raise DetectorError(self.where, "needs a scorer of the vectors view")


@CALIBS.register("center")
class Center(Transform):
    """Subtract the median training score, then scale by ``factor``."""

    kind = "calib"

    def __init__(self, *, factor: float = 1.0) -> None:
        self.factor = factor

    def validate(self):
        self._check_number("factor", 0.0, low_open=True)

    def fit(self, scores, domains):
        self.median_ = float(np.median(scores))
        return self

    def transform(self, scores):
        return (np.asarray(scores) - self.median_) * self.factor

    def state(self):
        return {"median": np.array(self.median_)}

    def load_state(self, arrays):
        self.median_ = float(arrays["median"])
        return self


@POSTS.register("l2")
class L2(Transform):
    """Each item row scaled to unit length (learns nothing)."""

    kind = "post"

    def __init__(self, *, factor: float = 1.0) -> None:
        self.factor = factor

    def transform(self, items):
        return [_l2(item) * self.factor for item in items]


def _l2(item):
    rows = np.asarray(item, dtype=np.float64)
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


@pytest.fixture()
def kinds():
    """Register the two test kinds; remove them afterwards (test order cannot matter)."""
    before = dict(PARTS)
    register_part("calib")(CalibPart)
    register_part("post")(PostPart)
    yield
    PARTS.clear()
    PARTS.update(before)


def test_kinds_are_registered_only_inside_the_fixture(kinds):
    assert {"calib", "post"} <= set(added_kinds())
    assert set(BUILT_IN_PARTS) <= set(PARTS)


def test_params_deep_set_route_remove_and_clone(kinds):
    det = create_detector("mahalanobis", calib="center", calib__factor=2.0)
    assert det.parts == {"calib": {"name": "center", "params": {"factor": 2.0}}}
    deep = det.get_params(deep=True)
    assert deep["calib"] == "center" and deep["calib__factor"] == 2.0
    assert "post" not in deep  # kinds the detector does not use are not listed
    det.set_params(calib__factor=3.0)
    assert det.part("calib").params == {"factor": 3.0}
    det.set_params(post="l2")
    assert list(det.parts) == ["calib", "post"]  # the order the hooks run them
    with pytest.raises(DetectorError, match="ambiguous: say calib__factor or post__factor"):
        det.set_params(factor=4.0)
    det.set_params(post=None)
    det.set_params(factor=4.0)  # a bare key that only one part accepts
    assert det.parts == {"calib": {"name": "center", "params": {"factor": 4.0}}}
    det.set_params(calib="center")  # switching a part resets its params
    assert det.parts == {"calib": {"name": "center", "params": {}}}
    # sklearn's clone: equal params, nothing shared, nothing fitted
    det.set_params(calib__factor=5.0)
    twin = clone(det)
    assert twin.get_params(deep=True) == det.get_params(deep=True)
    assert twin.parts is not det.parts and twin.parts["calib"] is not det.parts["calib"]
    assert not twin.is_fitted
    # set_params(**get_params(deep=True)) is a no-op, the deep keys included
    again = create_detector("mahalanobis")
    again.set_params(**det.get_params(deep=True))
    assert again.get_params(deep=True) == det.get_params(deep=True)
    det.set_params(calib=None)
    assert det.parts is None and "calib" not in det.get_params(deep=True)


def test_a_bare_name_is_accepted_as_the_saved_form(kinds):
    det = create_detector("mahalanobis", parts={"calib": "center"})
    assert det.part("calib").name == "center" and det.get_params(deep=True)["calib"] == "center"


def test_fit_score_save_load_with_both_hooks(kinds, toy_set, tmp_path):
    raw = create_detector("mahalanobis").fit(toy_set.train)
    det = create_detector("mahalanobis", calib="center", calib__factor=2.0).fit(toy_set.train)
    # scores hook: fitted on the out-of-fold training scores, applied to every score
    median = np.median(raw.train_scores_)
    np.testing.assert_allclose(det.train_scores_, (raw.train_scores_ - median) * 2.0)
    np.testing.assert_allclose(det.score(toy_set.test), (raw.score(toy_set.test) - median) * 2)
    assert det.threshold_ != raw.threshold_  # decided on the calibrated scale
    # items hook: the scorer is fitted on, and scores, the transformed items
    both = create_detector("mahalanobis", calib="center", post="l2").fit(toy_set.train)
    def l2_items(clips):  # the scorer's inputs of a pooled classical detector: embed's rows
        return [_l2(row[None]) for row in raw.embed(clips)]

    scorer = both.scorer_.unfitted_copy().fit(l2_items(toy_set.train),
                                              [c.domain for c in toy_set.train])
    expected = scorer.score(l2_items(toy_set.test)) - both.parts_["calib"].median_
    scores = both.score(toy_set.test)
    np.testing.assert_allclose(scores, expected, rtol=1e-9)
    assert not np.allclose(scores, det.score(toy_set.test))
    # learned state is saved with the detector's arrays; the config holds name + params
    out = both.save(tmp_path / "d")
    with np.load(out / "state.npz", allow_pickle=False) as arrays:
        assert "calib/median" in arrays.files
        assert float(arrays["calib/median"]) == both.parts_["calib"].median_
    config = json.loads((out / "config.json").read_text())
    assert config["params"]["parts"] == {"calib": {"name": "center", "params": {}},
                                         "post": {"name": "l2", "params": {}}}
    loaded = Detector.load(out)
    assert loaded.get_params(deep=True) == both.get_params(deep=True)
    np.testing.assert_array_equal(loaded.score(toy_set.test), scores)
    np.testing.assert_array_equal(loaded.train_scores_, both.train_scores_)
    assert loaded.threshold_ == both.threshold_
    np.testing.assert_allclose(loaded.score_signals(
        [__import__("soundfile").read(c.path, dtype="float32")[0] for c in toy_set.test[:2]],
        16000), scores[:2], rtol=1e-3, atol=1e-4)


def test_refit_scorer_changes_an_added_part_without_retraining(kinds, toy_set):
    det = create_detector("mahalanobis", calib="center").fit(toy_set.train)
    first = det.score(toy_set.test)
    det.refit_scorer(toy_set.train, calib__factor=3.0)
    np.testing.assert_allclose(det.score(toy_set.test), first * 3.0)


def test_a_missing_state_array_is_one_line_naming_the_file(kinds, toy_set, tmp_path):
    from soundwatch.detectors.base import read_npz, write_npz

    out = create_detector("mahalanobis", calib="center").fit(toy_set.train).save(tmp_path / "d")
    arrays = read_npz(out / "state.npz")
    del arrays["calib/median"]
    write_npz(out / "state.npz", arrays)
    with pytest.raises(DetectorError, match="state.npz: incomplete calib state") as info:
        Detector.load(out)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("params", "fragments"), [
    ({"calib": "nope"}, ("nope", "unknown calib", "known: center")),
    ({"calib": "center", "calib__factor": 0}, ("calib center.factor", "must be a number")),
    ({"calib": "center", "calib__colour": 1}, ("colour", "accepted: factor")),
    ({"calib__factor": 2}, ("mahalanobis.calib", "no calib chosen")),
    ({"parts": {"nokind": "x"}}, ("mahalanobis.parts", "unknown part kind 'nokind'", "calib")),
    ({"parts": ["calib"]}, ("mahalanobis.parts", "must be a mapping")),
    ({"parts": {"calib": {"name": "center", "extra": 1}}}, ("mahalanobis.calib", "{name, params}")),
    ({"parts": {"seed": "x"}}, ("'seed' is a hyper-parameter",)),
    ({"post": "l2", "scorer": "mse"}, ("needs the 'residual' view",)),
])
def test_bad_added_parts_are_one_line_errors(kinds, params, fragments):
    with pytest.raises(DetectorError) as info:
        create_detector("mahalanobis", **params)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_a_part_kind_checks_its_place_in_the_composition(kinds):
    with pytest.raises(DetectorError, match="ae.post: needs a scorer of the vectors view"):
        create_detector("ae", scorer="mse", post="l2")
    create_detector("ae", scorer="knn", post="l2")


def test_register_part_refuses_bad_kinds(kinds):
    class Other(AddedPart):
        entries = CALIBS

    class BadHook(AddedPart):
        hook = "somewhere"

    with pytest.raises(DetectorError, match="built-in"):
        register_part("scorer")(Other)
    with pytest.raises(DetectorError, match="built-in"):
        register_part("a__b")(Other)
    with pytest.raises(DetectorError, match="hook 'somewhere'"):
        register_part("elsewhere")(BadHook)
    with pytest.raises(DetectorError, match="already registered by CalibPart"):
        register_part("calib")(Other)
    register_part("calib")(CalibPart)  # the same class again (a re-import) is fine
    # a kind named like a hyper-parameter never shadows it, and cannot be chosen
    register_part("seed")(type("SeedPart", (AddedPart,), {"entries": CALIBS}))
    assert create_detector("mahalanobis", seed=3).seed == 3
    with pytest.raises(DetectorError, match="'seed' is a hyper-parameter"):
        create_detector("mahalanobis", parts={"seed": "center"})
    with pytest.raises(DetectorError, match="AddedPart subclass"):
        register_part("plain")(Transform)  # type: ignore[arg-type]


def test_export_refuses_added_parts_with_a_reason(kinds):
    from soundwatch.export.detector import export_reason

    assert export_reason(create_detector("mahalanobis")) is None
    assert "calib" in export_reason(create_detector("mahalanobis", calib="center"))


def test_no_added_kind_leaks_out_of_a_test():
    """After the tests above (in file order), none of their kinds remains registered."""
    assert not {"calib", "post", "seed"} & set(PARTS)


def test_soundwatch_components_lists_an_added_kind(kinds):
    from typer.testing import CliRunner

    from soundwatch.cli.app import app
    from soundwatch.cli.components_cmd import registries  # registers the command

    assert registries()["calibs"] is CalibPart.entries
    result = CliRunner().invoke(app, ["components", "calib", "--json", "--params"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)["calibs"]
    assert set(listed) == set(CalibPart.entries.names())
