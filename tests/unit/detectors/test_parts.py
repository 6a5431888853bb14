"""The typed parts of a ComposedDetector: built from the saved form, each checking itself."""

from __future__ import annotations

import pytest

from soundwatch.detectors import create_detector, list_detectors
from soundwatch.detectors.composed import ComposedDetector
from soundwatch.detectors.parts import BUILT_IN_PARTS, PARTS, EncoderPart, ScorerPart
from soundwatch.errors import DetectorError

COMPOSED = [n for n in list_detectors() if isinstance(create_detector(n), ComposedDetector)]


def test_every_nested_part_has_a_part_type():
    assert set(BUILT_IN_PARTS) == set(ComposedDetector._nested)
    assert set(BUILT_IN_PARTS) <= set(PARTS)  # then the added kinds (test_part_kinds.py)


@pytest.mark.parametrize("name", COMPOSED)
def test_each_part_of_a_preset_checks_itself_and_the_scorer_gets_its_view(name):
    det = create_detector(name)
    for kind, cls in BUILT_IN_PARTS.items():
        part = det.part(kind)
        assert type(part) is cls
        part.check()
        assert set(part.params) <= part.accepted() or not part.params, kind
    assert det.part("scorer").needs in det.views()
    before = dict(vars(det))
    det.part("scorer")
    assert vars(det) == before  # parts are built, never kept


def test_a_part_names_itself_in_its_errors():
    with pytest.raises(DetectorError, match="hidden"):
        EncoderPart("ae", {"hidden": [0]}, "ae.encoder").check()
    with pytest.raises(DetectorError, match="huge"):
        EncoderPart("cnn1d", {"preset": "huge"}, "x.encoder").check()
    with pytest.raises(DetectorError, match="n_neighbors"):
        ScorerPart("knn", {"n_neighbors": 0}, "x.scorer").create()


def test_training_part_exists_only_when_a_network_is_trained():
    assert create_detector("knn").part("training").accepted() == set()
    assert "epochs" in create_detector("ae").part("training").accepted()
    with pytest.raises(DetectorError, match="trains no network"):
        create_detector("knn", training={"epochs": 2})


def test_an_encoder_declares_its_input_preparation_without_building_it():
    assert create_detector("wavevision").part("encoder").prep_mode() == "image"
    assert create_detector("wavevision", encoder__input="logmel").part(
        "encoder").prep_mode() == "logmel2d"
    assert create_detector("ae").part("encoder").prep_mode() == "rows"
    assert create_detector("cnn1d").part("encoder").prep_mode() == "channels"
