"""Typed parts of a ComposedDetector, each built from its saved form (name + params)."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from typing import Any, ClassVar

from soundwatch.errors import DetectorError

__all__ = ["PARTS", "EncoderPart", "FrontendPart", "ObjectivePart", "Part", "PoolingPart",
           "ScorerPart", "TrainingPart"]


@dataclasses.dataclass(frozen=True)
class Part:
    """One part of a composition: a registered choice and its parameters.

    A part knows its registry, the parameters it accepts, how to check itself, and the
    views it offers to (or needs from) the others. ``config.json`` keeps only the saved
    form (``name`` and ``params``); a part is rebuilt from it whenever one is needed,
    so a detector holds no part objects and scoring leaves it unchanged.

    Attributes:
        name: The registered name (``None``: the part is absent).
        params: Its parameters as given (the registry's defaults fill the rest).
        where: How errors name it (``ae.scorer``).
    """

    name: str | None
    params: Mapping[str, Any]
    where: str = ""

    registry_path: ClassVar[tuple[str, str]] = ("", "")
    """(module, attribute) of the part's :class:`~soundwatch.registry.Registry`."""
    offers: ClassVar[tuple[str, ...]] = ()
    """Views this part adds to those the scorer may use."""

    @classmethod
    def registry(cls) -> Any:
        """The registry the part's name is looked up in (imported on first use)."""
        module, attribute = cls.registry_path
        return getattr(importlib.import_module(module), attribute)

    def accepted(self) -> set[str]:
        """The parameter names the chosen entry accepts (empty when absent)."""
        if self.name is None:
            return set()
        params = self.registry().params(self.name)
        params.pop("spec", None)
        params.pop("items", None)
        return set(params)

    def entry(self) -> Any:
        """The registered entry (class or function)."""
        return self.registry().get(self.name)

    def check(self) -> None:
        """Check the name and the parameters (raises :class:`DetectorError`)."""
        if self.name is not None:
            self.registry().check_params(self.name, dict(self.params))

    def create(self, **defaults: Any) -> Any:
        """The part's object; ``defaults`` fill parameters the part accepts and was not given."""
        extra = {k: v for k, v in defaults.items() if k in self.accepted()}
        return self.registry().create(self.name, **{**extra, **self.params})


class FrontendPart(Part):
    """The front-end (:mod:`soundwatch.features.frontends`): it gives ``rows`` or ``windows``."""

    registry_path = ("soundwatch.features.frontends", "FRONTENDS")

    def config(self) -> Any:
        """The typed front-end config these params describe."""
        from soundwatch.features.configs import make_config

        return make_config(self.name, **dict(self.params))[1]

    def accepted(self) -> set[str]:  # noqa: D102 - a config dataclass's fields
        from soundwatch.features.configs import CONFIGS, NOISE_PARAMS, resolve

        kind, _ = resolve(self.name, {})
        config = CONFIGS.get(kind) or self.registry().get(kind).config_class
        return {f.name for f in dataclasses.fields(config)} | set(NOISE_PARAMS)

    def check(self) -> None:  # noqa: D102
        try:
            self.config()
        except DetectorError:
            raise
        except Exception as exc:  # ConfigError from the front-end
            raise DetectorError(self.where, str(exc)) from exc

    @property
    def layout(self) -> str:
        """``rows`` (one vector per frame) or ``windows`` (``[C, T]`` maps)."""
        from soundwatch.features.frontends import frontend_layout

        return frontend_layout(self.name)


class EncoderPart(Part):
    """The encoder network's entry (:mod:`soundwatch.detectors.encoders`)."""

    registry_path = ("soundwatch.detectors.encoders", "ENCODERS")

    @property
    def layout(self) -> str:
        """The front-end layout the encoder reads."""
        return self.entry().layout

    def time_multiple(self) -> int:
        """Window lengths must be a multiple of this."""
        return int(self.entry().time_multiple(dict(self.params)))

    def prep_mode(self) -> str:
        """How its input is prepared (``rows``, ``channels``, ``image``), as registered."""
        return str(self.entry().prep_mode(dict(self.params)))

    def trains(self) -> bool:
        """Whether an objective trains it (``False``: frozen pretrained weights)."""
        return bool(self.entry().trains(dict(self.params)))

    def check(self) -> None:
        """Check the params, then build the network on a small stand-in input.

        The build catches values only the network's own code refuses (a width that does
        not divide); it runs with the caller's random state left alone.
        """
        import torch

        from soundwatch.detectors.encoders import InputSpec

        super().check()
        if self.name is None:
            return
        entry = self.entry()
        if not entry.trainable:
            return
        window = None if entry.layout == "rows" else max(64, 4 * self.time_multiple())
        spec = InputSpec(entry.layout, 640 if entry.layout == "rows" else 16, window, 2)
        with torch.random.fork_rng(devices=[]):
            try:
                self.registry().create(self.name, spec=spec, **dict(self.params))
            except DetectorError:
                raise
            except Exception as exc:  # a value the network's own code refuses
                raise DetectorError(self.where + "_params", str(exc)) from exc


class ObjectivePart(Part):
    """The training objective (:mod:`soundwatch.detectors.objectives`)."""

    registry_path = ("soundwatch.detectors.objectives", "OBJECTIVES")

    @property
    def views(self) -> tuple[str, ...]:
        """The views a network trained by it offers besides ``vectors``."""
        return tuple(self.entry().views) if self.name is not None else ()

    @property
    def supervised(self) -> bool:
        """Whether it needs labelled anomalies."""
        return self.name is not None and bool(self.entry().supervised)

    def check(self) -> None:
        """Build the objective: its ``validate()`` checks the values."""
        if self.name is not None:
            self.create()


class PoolingPart(Part):
    """The pooling of the ``vectors`` view (:mod:`soundwatch.detectors.pooling`)."""

    registry_path = ("soundwatch.detectors.pooling", "POOLINGS")


class ScorerPart(Part):
    """The scorer (:mod:`soundwatch.detectors.scorers`): it needs one view."""

    registry_path = ("soundwatch.detectors.scorers", "SCORERS")

    @property
    def needs(self) -> str:
        """The view it scores (``vectors``, ``residual``, ``probability``, ``elbo``)."""
        return self.entry().requires


class TrainingPart(Part):
    """The training hyper-parameters (:class:`~soundwatch.training.spec.TrainSpec`).

    ``name`` is ``"train"`` when the composition trains a network, ``None`` otherwise.
    """

    def accepted(self) -> set[str]:  # noqa: D102
        from soundwatch.training.spec import TrainSpec

        return {f.name for f in dataclasses.fields(TrainSpec)} if self.name else set()

    def spec(self) -> Any:
        """The typed :class:`~soundwatch.training.spec.TrainSpec`."""
        from soundwatch.training.spec import TrainSpec

        return TrainSpec.from_dict(dict(self.params) or None, "training")

    def check(self) -> None:  # noqa: D102
        self.spec()
        if self.params and self.name is None:
            raise DetectorError(self.where, "this composition trains no network (no encoder "
                                "with an objective)")


PARTS: dict[str, type[Part]] = {
    "frontend": FrontendPart,
    "encoder": EncoderPart,
    "objective": ObjectivePart,
    "pooling": PoolingPart,
    "scorer": ScorerPart,
    "training": TrainingPart,
}
"""Part prefix (``scorer`` in ``scorer__k``) -> its part type: a new kind is one entry here."""
