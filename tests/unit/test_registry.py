"""The generic Registry (timm style) and every registry built on it."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from soundwatch import registry as registry_module
from soundwatch.errors import ConfigError, DetectorError
from soundwatch.registry import Registry, accepted_params


def _fresh(kind: str = "widget", **kwargs) -> Registry:
    return Registry(kind, **kwargs)


def test_register_a_class_and_a_function():
    reg = _fresh()

    @reg.register("plain")
    class Plain:
        """A plain widget.

        More text that is not part of the description.
        """

        def __init__(self, *, size: int = 3, colour: str = "red") -> None:
            self.size, self.colour = size, colour

    @reg.register("made")
    def made(*, speed: float = 1.0):
        """Make a widget fast."""
        return ("made", speed)

    assert Plain.name == "plain"  # a class learns its registry name
    assert reg.get("plain") is Plain and reg.get("made") is made
    assert "plain" in reg and "nothing" not in reg
    assert reg.names() == ["made", "plain"]
    assert reg.describe() == {"made": "Make a widget fast.", "plain": "A plain widget."}
    assert reg.params("plain") == {"size": 3, "colour": "red"}
    widget = reg.create("plain", size=5)
    assert (widget.size, widget.colour) == (5, "red")
    assert reg.create("made", speed=2.0) == ("made", 2.0)
    assert "widget" in repr(reg) and "2 entries" in repr(reg)


def test_duplicate_name_is_refused_but_the_same_object_again_is_fine():
    reg = _fresh()

    def first():
        """First."""

    def second():
        """Second."""

    reg.register("x")(first)
    reg.register("x")(first)  # registering the same object twice (a re-import) is harmless
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("x")(second)
    assert reg.get("x") is first


def test_unknown_name_lists_the_known_ones():
    reg = _fresh("gadget", error=DetectorError)
    reg.register("b")(lambda: None)
    reg.register("a")(lambda: None)
    with pytest.raises(DetectorError, match=r"unknown gadget \(known: a, b\)") as info:
        reg.get("zzz")
    assert info.value.where == "zzz"
    with pytest.raises(DetectorError, match="known: none"):
        _fresh("gadget", error=DetectorError).get("x")
    with pytest.raises(DetectorError, match="unknown gadget"):
        reg.get(["not", "hashable"])  # type: ignore[arg-type]


def test_check_params_names_the_unknown_and_the_accepted_ones():
    reg = _fresh()

    @reg.register("w")
    def w(*, alpha: int = 1, beta: int = 2):
        """W."""

    reg.check_params("w", {"alpha": 3})
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) gamma.*accepted: alpha, beta"):
        reg.check_params("w", {"gamma": 1, "alpha": 2})
    with pytest.raises(ConfigError, match="gamma") as info:
        reg.create("w", gamma=1)
    assert "widget w" in str(info.value)
    with pytest.raises(ConfigError, match="here"):
        reg.check_params("w", {"gamma": 1}, where="here")

    @reg.register("kw")
    def kw(**anything):
        """Takes anything."""
        return anything

    reg.check_params("kw", {"whatever": 1})  # **kwargs accepts every name
    assert reg.create("kw", whatever=1) == {"whatever": 1}


def test_create_turns_a_type_error_of_the_entry_into_the_registry_error():
    reg = _fresh()

    @reg.register("needs")
    def needs(*, required):
        """Needs a value."""

    with pytest.raises(ConfigError, match="bad parameters"):
        reg.create("needs")


def test_accepted_params_of_a_class_and_a_function():
    class C:
        def __init__(self, a, *, b=2, **rest):
            pass

    names, var_kw = accepted_params(C)
    assert set(names) == {"a", "b"} and names["b"] == 2 and var_kw
    names, var_kw = accepted_params(lambda x, y=1: None)
    assert names["y"] == 1 and set(names) == {"x", "y"} and not var_kw


def test_built_in_modules_are_imported_on_first_lookup(monkeypatch):
    imported = []
    monkeypatch.setattr(registry_module.importlib, "import_module", imported.append)
    reg = _fresh(modules=("some.module", "other.module"))
    assert imported == []  # nothing imported at construction: importing stays light
    reg.names()
    reg.names()
    assert imported == ["some.module", "other.module"]  # once


def _entry_points(group_seen: list[str], entries: list[SimpleNamespace]):
    def entry_points(*, group: str):
        group_seen.append(group)
        return entries

    return entry_points


def test_entry_point_plugins_register_entries(monkeypatch):
    reg = _fresh("scorer")

    def load():
        @reg.register("plugged")
        def plugged():
            """A plug-in scorer."""

        return plugged

    groups: list[str] = []
    monkeypatch.setattr(
        registry_module.metadata, "entry_points",
        _entry_points(groups, [SimpleNamespace(name="plugged", load=load)]),
    )
    assert "plugged" in reg.names()
    assert groups == ["soundwatch.scorers"]
    assert reg.describe()["plugged"] == "A plug-in scorer."


def test_a_broken_plugin_is_logged_and_the_others_still_load(monkeypatch, caplog):
    reg = _fresh("front-end")
    reg.register("builtin")(lambda: None)

    def broken():
        raise ImportError("no module named nonsense")

    groups: list[str] = []
    monkeypatch.setattr(
        registry_module.metadata, "entry_points",
        _entry_points(groups, [SimpleNamespace(name="bad", load=broken)]),
    )
    with caplog.at_level(logging.WARNING, logger="soundwatch.registry"):
        assert reg.names() == ["builtin"]
    assert groups == ["soundwatch.front-ends"]
    assert "bad" in caplog.text and "nonsense" in caplog.text


# ------------------------------------------------------------------ the real registries


def _registries():
    from soundwatch.detectors.encoders import ENCODERS
    from soundwatch.detectors.objectives import OBJECTIVES
    from soundwatch.detectors.pooling import POOLINGS
    from soundwatch.detectors.registry import DETECTORS
    from soundwatch.detectors.scorers import SCORERS
    from soundwatch.features.frontends import FRONTENDS

    return {
        "frontends": (FRONTENDS, {"waveform", "stft", "logmel", "frames", "cqt"}),
        "encoders": (ENCODERS, {"ae", "vae1d", "unet1d", "cnn1d", "wavevision"}),
        "objectives": (OBJECTIVES, {"reconstruction", "vae", "supervised", "synthetic",
                                    "auxiliary"}),
        "poolings": (POOLINGS, {"none", "mean", "meanstd", "max"}),
        "scorers": (SCORERS, {"probability", "mse", "elbo", "mahalanobis",
                              "selective_mahalanobis", "knn", "gmm"}),
        "detectors": (DETECTORS, {"gmm", "knn", "mahalanobis", "ae", "vae1d", "unet1d-ae",
                                  "cnn1d", "wavevision"}),
    }


@pytest.mark.parametrize("which", ["frontends", "encoders", "objectives", "poolings",
                                   "scorers", "detectors"])
def test_every_registry_is_enumerable_and_every_entry_is_described(which):
    reg, built_in = _registries()[which]
    names = reg.names()
    assert names == sorted(names)
    assert built_in <= set(names)
    described = reg.describe()
    assert list(described) == names
    undescribed = [n for n, text in described.items() if not text.strip()]
    assert not undescribed, f"{which} without a description: {undescribed}"
    for name in names:
        assert name in reg
        reg.params(name)  # every entry's parameters can be listed


def test_registered_classes_know_their_names():
    from soundwatch.detectors.objectives import OBJECTIVES
    from soundwatch.detectors.scorers import SCORERS
    from soundwatch.features.frontends import FRONTENDS

    for reg in (FRONTENDS, OBJECTIVES, SCORERS):
        for name in reg.names():
            assert reg.get(name).name == name


def test_frontends_declare_layout_and_config_class():
    import dataclasses

    from soundwatch.features.frontends import FRONTENDS

    for name in FRONTENDS.names():
        cls = FRONTENDS.get(name)
        assert cls.layout in ("waveform", "bins_time", "rows"), name
        assert dataclasses.is_dataclass(cls.config_class), name


def test_encoders_declare_layout_and_trainability():
    from soundwatch.detectors.encoders import ENCODERS

    for name in ENCODERS.names():
        entry = ENCODERS.get(name)
        assert entry.layout in ("rows", "windows"), name
        assert isinstance(entry.trainable, bool), name
        assert int(entry.time_multiple({})) >= 1, name


def test_objectives_and_scorers_declare_their_views():
    from soundwatch.detectors.objectives import OBJECTIVES
    from soundwatch.detectors.scorers import SCORERS, VIEWS

    for name in OBJECTIVES.names():
        cls = OBJECTIVES.get(name)
        assert set(cls.views) <= set(VIEWS) - {"vectors"}, name
        assert SCORERS.get(cls.default_scorer).requires in ("vectors", *cls.views), name
    for name in SCORERS.names():
        assert SCORERS.get(name).requires in VIEWS, name
