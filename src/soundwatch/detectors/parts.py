"""Typed parts of a ComposedDetector, each built from its saved form (name + params)."""

from __future__ import annotations

import dataclasses
import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from soundwatch.detectors.component import Component
from soundwatch.errors import DetectorError, SoundwatchError

if TYPE_CHECKING:
    from typing import Self

    from soundwatch.registry import Registry

__all__ = ["BUILT_IN_PARTS", "HOOKS", "PARTS", "AddedPart", "AddedParts", "EncoderPart",
           "FrontendPart", "ObjectivePart", "Part", "PoolingPart", "ScorerPart",
           "TrainingPart", "Transform", "added_kinds", "register_part"]

log = logging.getLogger(__name__)


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

    kind: ClassVar[str] = ""
    """The prefix of its parameters (``scorer`` in ``scorer__k``)."""
    registry_path: ClassVar[tuple[str, str]] = ("", "")
    """(module, attribute) of the part's :class:`~soundwatch.registry.Registry`."""
    entries: ClassVar[Registry[Any] | None] = None
    """The registry itself (an added kind's, defined in the same file); else ``registry_path``."""
    offers: ClassVar[tuple[str, ...]] = ()
    """Views this part adds to those the scorer may use."""

    @classmethod
    def registry(cls) -> Any:
        """The registry the part's name is looked up in (imported on first use)."""
        if cls.entries is not None:
            return cls.entries
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

    kind = "frontend"
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

    kind = "encoder"
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

    kind = "objective"
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

    kind = "pooling"
    registry_path = ("soundwatch.detectors.pooling", "POOLINGS")


class ScorerPart(Part):
    """The scorer (:mod:`soundwatch.detectors.scorers`): it needs one view."""

    kind = "scorer"
    registry_path = ("soundwatch.detectors.scorers", "SCORERS")

    @property
    def needs(self) -> str:
        """The view it scores (``vectors``, ``residual``, ``probability``, ``elbo``)."""
        return self.entry().requires


class TrainingPart(Part):
    """The training hyper-parameters (:class:`~soundwatch.training.spec.TrainSpec`).

    ``name`` is ``"train"`` when the composition trains a network, ``None`` otherwise.
    """

    kind = "training"

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


BUILT_IN_PARTS: dict[str, type[Part]] = {
    "frontend": FrontendPart,
    "encoder": EncoderPart,
    "objective": ObjectivePart,
    "pooling": PoolingPart,
    "scorer": ScorerPart,
    "training": TrainingPart,
}
"""The built-in kinds: each is an explicit keyword hyper-parameter of ``ComposedDetector``."""

PARTS: dict[str, type[Part]] = dict(BUILT_IN_PARTS)
"""Part prefix (``scorer`` in ``scorer__k``) -> its part type: the built-in kinds, then the
kinds added with :func:`register_part` (a file of its own, or a plugin's)."""


# ------------------------------------------------------------------ added part kinds

HOOKS = ("items", "scores")
"""Where an added kind runs in the composed flow (in the order of the ``parts`` dict):

``items``: the scorer's input of each clip (after pooling: a list of ``[n_i, d]`` arrays),
fitted on the normal training clips' items before the scorer (like the front-end and the
network, it sees every training clip; the out-of-fold folds refit the scorer only).
``scores``: the scorer's scores (1-D float64), fitted on the out-of-fold training scores;
``train_scores_`` and ``threshold_`` are then on its scale."""

ENTRY_POINT_GROUP = "soundwatch.part_kinds"
"""Entry-point group of plugin modules that register part kinds (loaded on first use)."""

_plugins_loaded: list[bool] = []


class Transform(Component):
    """An entry of an added part kind: keyword hyper-parameters, ``fit``, ``transform``.

    Values are what the kind's hook carries (:data:`HOOKS`): the clips' items (a list of
    ``[n_i, d]`` arrays) or their scores (1-D float64). Learned arrays live in attributes
    ending in ``_``; :meth:`state` / :meth:`load_state` save them with the detector's
    arrays (numbers only, never a pickle).
    """

    kind: ClassVar[str] = "part"

    def fit(self, values: Any, domains: Sequence[str | None]) -> Self:
        """Learn from the training clips' values (nothing by default)."""
        return self

    def transform(self, values: Any) -> Any:
        """The values mapped (same number of clips)."""
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays by name (none by default)."""
        return {}

    def load_state(self, arrays: Mapping[str, np.ndarray]) -> Self:
        """Restore what :meth:`state` gave."""
        return self


class AddedPart(Part):
    """Base of a part kind added in a file of its own, registered with :func:`register_part`.

    A subclass sets ``entries`` (the kind's :class:`~soundwatch.registry.Registry` of
    :class:`Transform` classes) and ``hook`` (one of :data:`HOOKS`); it may override
    :meth:`check_in` for rules between it and the rest of the composition.
    """

    hook: ClassVar[str] = "scores"

    def check(self) -> None:
        """Check the name and the parameters by building the entry (one-line error)."""
        if self.name is None:
            raise DetectorError(self.where, f"no {self.kind} chosen ({self.kind}=NAME)")
        try:
            self.create()
        except DetectorError:
            raise
        except SoundwatchError as exc:  # a registry made with another error class
            raise DetectorError(self.where, str(exc)) from exc

    def check_in(self, detector: Any) -> None:
        """The rules between this part and the rest of ``detector`` (none by default)."""

    def create(self, **defaults: Any) -> Transform:  # noqa: D102
        obj = super().create(**defaults)
        if not isinstance(obj, Transform):
            raise DetectorError(self.where, f"{self.name} is not a Transform")
        return obj


def register_part(kind: str) -> Callable[[type[AddedPart]], type[AddedPart]]:
    """Decorator adding a part kind to :data:`PARTS` (``@register_part("calibrator")``).

    ``ComposedDetector(parts={kind: {"name": ..., "params": {...}}})`` then uses it,
    ``kind=NAME`` and ``kind__key=value`` are parameters (``-p calibrator=zscore``), and
    the flow runs it at the class's ``hook``. Plugins register kinds from the modules of
    the entry-point group ``soundwatch.part_kinds``.

    Raises:
        DetectorError: A built-in or malformed kind, an unknown hook, or a kind that
            another class already holds.
    """

    def decorator(cls: type[AddedPart]) -> type[AddedPart]:
        if not (isinstance(cls, type) and issubclass(cls, AddedPart)):
            raise DetectorError(kind, "a part kind is an AddedPart subclass")
        if kind in BUILT_IN_PARTS or not kind.isidentifier() or "__" in kind:
            raise DetectorError(kind, "not a name for an added part kind (built-in, or not "
                                "an identifier without '__')")
        if cls.hook not in HOOKS:
            raise DetectorError(kind, f"hook {cls.hook!r} is not one of {', '.join(HOOKS)}")
        previous = PARTS.get(kind)
        if previous is not None and previous is not cls and (
                previous.__qualname__, previous.__module__) != (cls.__qualname__, cls.__module__):
            raise DetectorError(kind, f"part kind already registered by {previous.__name__}")
        cls.kind = kind
        PARTS[kind] = cls
        return cls

    return decorator


def added_kinds() -> list[str]:
    """The added part kinds, in registration order (plugins imported on the first call)."""
    if not _plugins_loaded:
        _plugins_loaded.append(True)
        for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                entry.load()
            except Exception as exc:  # a broken plugin must not break the built-in parts
                log.warning("part kind plugin %s failed to load: %s", entry.name, exc)
    return [kind for kind in PARTS if kind not in BUILT_IN_PARTS]


class AddedParts:
    """The ``parts`` hyper-parameter of a composed detector: its added kinds (a mixin).

    ``parts`` maps an added kind to its saved form ``{"name": ..., "params": {...}}`` (a
    bare name is accepted too). ``get_params(deep=True)`` lists ``<kind>`` and
    ``<kind>__<key>``; ``set_params`` takes them (``<kind>=None`` removes the part) and a
    bare key that only one part accepts. Fitted entries live in ``parts_`` (kind ->
    :class:`Transform`); their arrays are saved as ``<kind>/<name>``.
    """

    parts: dict[str, Any] | None
    parts_: dict[str, Transform]
    seed: int
    name: str
    _nested: ClassVar[dict[str, str]]

    def _added(self, kind: str) -> tuple[str | None, dict[str, Any]]:
        """The saved form of ``kind`` as (name, params); ``(None, {})`` when absent."""
        value = self.parts.get(kind) if isinstance(self.parts, dict) else None
        if isinstance(value, str):
            return value, {}
        if isinstance(value, Mapping):
            params = value.get("params")
            return value.get("name"), dict(params) if isinstance(params, Mapping) else {}
        return None, {}

    def added_part(self, kind: str) -> AddedPart:
        """The typed part of an added ``kind`` (built from ``parts``)."""
        kinds = added_kinds()
        if kind not in kinds:
            raise DetectorError(f"{self.name}.parts", f"unknown part kind {kind!r} (added "
                                f"kinds: {', '.join(kinds) or 'none'}; is the module or "
                                "plugin that registers it installed?)")
        name, params = self._added(kind)
        return PARTS[kind](name, params, f"{self.name}.{kind}")  # type: ignore[return-value]

    def get_params(self, deep: bool = True) -> dict[str, Any]:  # noqa: D102
        out = super().get_params(deep)  # type: ignore[misc]
        if deep and isinstance(self.parts, dict):
            for kind in self.parts:
                name, params = self._added(kind)
                out[kind] = name
                out.update({f"{kind}__{key}": value for key, value in params.items()})
        return out

    def set_params(self, **params: Any) -> Self:  # noqa: D102 - see Detector.set_params
        names = set(self._param_names())  # type: ignore[attr-defined]
        kinds = set(added_kinds()) - names  # a kind named like a hyper-parameter is refused
        if "parts" in params:
            self.parts = params.pop("parts")
        mine: dict[str, Any] = {}
        for key in list(params):
            kind, sep, _ = key.partition("__")
            if kind in kinds:
                mine[key] = params.pop(key)
            elif not sep and key not in names:
                owner = self._added_owner(key)
                if owner is not None:
                    mine[f"{owner}__{key}"] = params.pop(key)
        if mine:
            parts = {kind: {"name": name, "params": kept} for kind in (self.parts or {})
                     for name, kept in [self._added(kind)]}
            for key in sorted(mine, key=lambda k: "__" in k):  # switches, then params
                kind, _, sub = key.partition("__")
                if not sub and mine[key] is None:
                    parts.pop(kind, None)
                elif not sub:
                    parts[kind] = {"name": mine[key], "params": {}}
                elif kind not in parts:
                    raise DetectorError(f"{self.name}.{kind}", f"no {kind} chosen: give "
                                        f"{kind}=NAME with {key}")
                else:
                    parts[kind]["params"][sub] = mine[key]
            self.parts = parts or None
        return super().set_params(**params)  # type: ignore[misc]

    def _added_owner(self, key: str) -> str | None:
        """The one added part of this detector that accepts a bare ``key``, if any."""
        owners = [k for k in (self.parts if isinstance(self.parts, dict) else ())
                  if k in PARTS and key in self.added_part(k).accepted()]
        if not owners:
            return None
        owners += [p for p in self._nested if key in self._accepted(p)]  # type: ignore[attr-defined]
        if len(owners) > 1:
            raise DetectorError(self.name, f"parameter {key!r} is ambiguous: say "
                                f"{' or '.join(f'{p}__{key}' for p in owners)}")
        return owners[0]

    def check_added(self) -> None:
        """Check ``parts``: known kinds, saved forms, then each part checks itself.

        Raises:
            DetectorError: The first problem, naming the part (one line).
        """
        if self.parts is None:
            return
        where = f"{self.name}.parts"
        if not isinstance(self.parts, dict):
            raise DetectorError(where, f"must be a mapping of part kind to its name and "
                                f"params, got {self.parts!r}")
        for kind, value in self.parts.items():
            if kind in self._param_names():  # type: ignore[attr-defined]
                raise DetectorError(where, f"{kind!r} is a hyper-parameter of its own, not "
                                    "an added part kind")
            ok = isinstance(value, str) or (
                isinstance(value, Mapping) and set(value) <= {"name", "params"}
                and isinstance(value.get("name"), str)
                and isinstance(value.get("params") or {}, Mapping))
            if not ok:
                raise DetectorError(f"{self.name}.{kind}", f"must be a name or "
                                    f"{{name, params}}, got {value!r}")
            part = self.added_part(kind)
            part.check()
            part.check_in(self)

    def _hooked(self, hook: str) -> list[str]:
        return [kind for kind in (self.parts or {}) if PARTS[kind].hook == hook]

    def _transformed(self, kind: str, obj: Transform, values: Any) -> Any:
        n = len(values)
        out = obj.transform(values)
        if PARTS[kind].hook == "scores":
            out = np.asarray(out, dtype=np.float64).reshape(-1)
        if len(out) != n:
            raise DetectorError(f"{self.name}.{kind}", f"{obj.name} gave {len(out)} values "
                                f"for {n} clips")
        return out

    def fit_added(self, hook: str, values: Any, domains: Sequence[str | None]) -> Any:
        """Fit this hook's added parts in turn (into ``parts_``); the values they give."""
        if hook == "scores":
            values = np.asarray(values, dtype=np.float64).reshape(-1)
        for kind in self._hooked(hook):
            obj = self.added_part(kind).create(seed=self.seed).fit(values, domains)
            self.parts_[kind] = obj
            values = self._transformed(kind, obj, values)
        return values

    def apply_added(self, hook: str, values: Any) -> Any:
        """The values mapped by this hook's fitted added parts (unchanged without any)."""
        for kind in self._hooked(hook):
            values = self._transformed(kind, self.parts_[kind], values)
        return values

    def added_state(self) -> dict[str, np.ndarray]:
        """The fitted added parts' arrays, named ``<kind>/<name>``."""
        return {f"{kind}/{key}": value for kind, obj in self.parts_.items()
                for key, value in obj.state().items()}

    def load_added(self, arrays: Mapping[str, np.ndarray], where: Any) -> None:
        """Rebuild ``parts_`` from the arrays :meth:`added_state` gave."""
        self.parts_ = {}
        for kind in self.parts or {}:
            prefix = f"{kind}/"
            own = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            try:
                self.parts_[kind] = self.added_part(kind).create(seed=self.seed).load_state(own)
            except (KeyError, TypeError, ValueError) as exc:
                raise DetectorError(where, f"incomplete {kind} state (missing {exc})") from exc
