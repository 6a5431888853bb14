"""The Detector contract: sklearn-style nested params, fit/score/predict, save/load."""

from __future__ import annotations

import abc
import copy
import json
import logging
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from soundwatch.atomic import atomic_path, write_json
from soundwatch.detectors.normalize import normalize_scores
from soundwatch.errors import DetectorError
from soundwatch.registry import accepted_params

if TYPE_CHECKING:
    from typing import Self

    from soundwatch.datasets.clip import Clip
    from soundwatch.training.context import RunContext

__all__ = [
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "Detector",
    "clone",
    "normalize_scores",
    "read_npz",
    "resolve_labels",
    "write_npz",
]

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
FORMAT_VERSION = 2
"""Version of the saved-detector layout (config.json + state files).

1: soundwatch 0.1's one-class-per-detector format; 2: composed detectors (part names and
their params; scorer arrays under ``scorer/``)."""


def write_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write numeric arrays to an uncompressed ``.npz`` file atomically (no pickles).

    The bytes depend only on the arrays (fixed member times), so the same state gives
    the same file.

    Args:
        path: Destination (``.npz``).
        arrays: Name -> array; object arrays are refused.

    Raises:
        DetectorError: If an array holds Python objects.
    """
    for key, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise DetectorError(path, f"array {key!r} holds Python objects; refusing to "
                                "save it")
    # streamed into the file member by member: a k-NN bank of every training frame is
    # hundreds of MB, and in-memory buffers held four copies of it at once
    with atomic_path(path) as tmp, open(tmp, "wb") as handle, \
            zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
        for key in sorted(arrays):
            arr = np.asarray(arrays[key], order="C")  # a copy only when not C-ordered
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            big = arr.nbytes + 4096 >= zipfile.ZIP64_LIMIT
            with archive.open(info, "w", force_zip64=big) as member:
                np.lib.format.write_array(member, arr, allow_pickle=False)


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read every array of a ``.npz`` written by :func:`write_npz` (``allow_pickle=False``).

    Raises:
        DetectorError: Missing, truncated or corrupted file (one line, file named).
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError as exc:
        raise DetectorError(path, "state file missing") from exc
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DetectorError(path, f"cannot read detector state (truncated or corrupted?): "
                            f"{reason}") from exc


def resolve_labels(name: str, clips: Sequence[Clip], labels: np.ndarray | None) -> np.ndarray:
    """Labels for supervised training: ``labels`` if given, else each ``clip.label``.

    Raises:
        DetectorError: Wrong length or missing labels.
    """
    if labels is None:
        missing = [c.path for c in clips if c.label is None]
        if missing:
            raise DetectorError(missing[0], f"{name} needs labels and this clip has none")
        labels = np.array([c.label for c in clips])
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if len(labels) != len(clips):
        raise DetectorError(name, f"{len(labels)} labels for {len(clips)} clips")
    return labels


def clone(detector: Detector) -> Detector:
    """An unfitted detector with the same hyper-parameters (``sklearn.base.clone`` does this).

    Args:
        detector: Any detector.

    Returns:
        A new detector: same class, same registry name, deep-copied parameters.
    """
    params = {k: copy.deepcopy(v) for k, v in detector.get_params(deep=False).items()}
    new = type(detector)(**params)
    new._preset = getattr(detector, "_preset", None)
    return new


class Detector(abc.ABC):
    """Base class of every anomaly detector (scikit-learn style).

    Subclasses declare their hyper-parameters as keyword-only arguments of ``__init__``
    and store each one, unchanged, in an attribute of the same name; ``__init__`` does
    nothing else. Parameters ending in ``_params`` (and ``training``) are dicts of a
    part's parameters, addressable as ``part__key`` (``scorer__n_neighbors``) by
    :meth:`get_params` / :meth:`set_params`. Learned state lives in attributes whose
    names end with ``_`` and is created by :meth:`fit`. Scores are always "higher = more
    anomalous"; :meth:`fit` also sets ``threshold_`` (the decision threshold) and
    ``train_scores_`` (out-of-fold scores of the training clips).

    Run settings (device, cache folder, checkpoints, progress, audio channel) are not
    parameters: they come in a :class:`~soundwatch.training.context.RunContext` given to
    each :meth:`fit` / :meth:`score` call (none: ``RunContext()``'s defaults); a detector
    never keeps one.

    Class attributes:
        test_params: Small hyper-parameters that make a detector fast enough for unit
            tests; set per registered name by :func:`soundwatch.detectors.register`.
    """

    _nested: ClassVar[dict[str, str]] = {}
    """Part prefix -> the dict parameter holding that part's params (``scorer`` ->
    ``scorer_params``)."""

    # ------------------------------------------------------------------ naming
    @property
    def name(self) -> str:
        """Registry name of the preset this detector came from (``"composed"`` otherwise)."""
        return getattr(self, "_preset", None) or "composed"

    @property
    def supervised(self) -> bool:
        """Whether :meth:`fit` needs labelled anomalies."""
        return False

    @property
    def test_params(self) -> dict[str, Any]:
        """Small settings for unit tests of this preset (see the registry)."""
        from soundwatch.detectors.registry import preset_test_params

        return preset_test_params(self.name)

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        return list(accepted_params(cls)[0])

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        """The ``__init__`` keyword arguments and their default values."""
        return accepted_params(cls)[0]

    def part_params(self, part: str) -> dict[str, Any]:
        """The effective parameters of one part: its defaults updated by the given ones."""
        return dict(getattr(self, self._nested[part]) or {})

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The hyper-parameters (scikit-learn's contract).

        Args:
            deep: Also list each part's parameters as ``part__key``.
        """
        out = {name: getattr(self, name) for name in self._param_names()}
        if deep:
            for part in self._nested:
                for key, value in self.part_params(part).items():
                    out[f"{part}__{key}"] = value
        return out

    def _route(self, key: str) -> str | None:
        """The part whose parameters have ``key`` when exactly one does (bare-key shortcut)."""
        owners = [part for part in self._nested if key in self._accepted(part)]
        if len(owners) > 1:
            raise DetectorError(self.name, f"parameter {key!r} is ambiguous: say "
                                f"{' or '.join(f'{p}__{key}' for p in owners)}")
        return owners[0] if owners else None

    def _accepted(self, part: str) -> set[str]:
        """Parameter names the current choice of ``part`` accepts (subclasses override)."""
        return set(self.part_params(part))

    def _on_part_change(self, part: str, given: Mapping[str, Any]) -> None:  # noqa: B027
        """Hook: a part was switched by :meth:`set_params` (e.g. reset its params)."""

    def set_params(self, **params: Any) -> Self:
        """Change hyper-parameters (before :meth:`fit`).

        Accepts top-level names, ``part__key`` for a part's parameter, and a bare part
        parameter name when exactly one part has it (``epochs`` -> ``training__epochs``).

        Raises:
            DetectorError: Unknown or ambiguous name, or an invalid value.
        """
        names = set(self._param_names())
        top = {k: v for k, v in params.items() if k in names}
        for key, value in top.items():
            setattr(self, key, value)
        for part, dict_name in self._nested.items():
            if part in top and dict_name not in top:
                self._on_part_change(part, params)
        for key, value in params.items():
            if key in names:
                continue
            part, sep, sub = key.partition("__")
            if not sep:
                sub, part = key, self._route(key)  # type: ignore[assignment]
                if part is None:
                    raise DetectorError(self.name, f"unknown parameter {key!r}")
            elif part not in self._nested:
                raise DetectorError(self.name, f"unknown parameter {key!r}")
            dict_name = self._nested[part]
            current = dict(getattr(self, dict_name) or {})
            current[sub] = value
            setattr(self, dict_name, current)
        self.validate_params()
        return self

    def __sklearn_clone__(self) -> Detector:
        return clone(self)

    def validate_params(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Check hyper-parameter values; raise :class:`DetectorError` for a bad one."""

    # ------------------------------------------------------------------ state
    def fitted_attributes(self) -> dict[str, Any]:
        """Learned attributes (names ending in ``_``, not starting with ``_``)."""
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`load`) has run."""
        return bool(self.fitted_attributes())

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise DetectorError(self.name, "not fitted: call fit() or load()")

    # ------------------------------------------------------------------ API
    @abc.abstractmethod
    def fit(self, clips: Sequence[Clip], labels: np.ndarray | None = None,
            context: RunContext | None = None) -> Self:
        """Learn from training clips.

        Args:
            clips: Training clips (normal ones for unsupervised detectors).
            labels: 0/1 per clip for supervised detectors; defaults to ``clip.label``.
            context: Run settings (device, cache, checkpoints, progress).

        Returns:
            ``self``.
        """

    @abc.abstractmethod
    def score(self, clips: Sequence[Clip], context: RunContext | None = None) -> np.ndarray:
        """Anomaly score per clip (float64, higher = more anomalous)."""

    @abc.abstractmethod
    def score_signals(self, signals: Sequence[np.ndarray], sr: int,
                      context: RunContext | None = None) -> np.ndarray:
        """Anomaly score per in-memory mono waveform (float64, higher = more anomalous).

        Args:
            signals: 1-D float waveforms.
            sr: Their sample rate in Hz (resampled to the detector's rate if needed).
            context: Run settings.
        """

    def decision_function(self, clips: Sequence[Clip],
                          context: RunContext | None = None) -> np.ndarray:
        """Same as :meth:`score` (scikit-learn's name)."""
        return self.score(clips, context)

    def predict(self, clips: Sequence[Clip], context: RunContext | None = None) -> np.ndarray:
        """0/1 per clip: 1 (anomalous) when the score exceeds the fitted ``threshold_``."""
        self._check_fitted()
        scores = self.score(clips, context)
        return (np.nan_to_num(scores, nan=-np.inf) > self.threshold_).astype(np.int64)

    def normalized_score(self, clips: Sequence[Clip], how: str = "zscore",
                         context: RunContext | None = None) -> np.ndarray:
        """:meth:`score` expressed against the out-of-fold training scores.

        Args:
            clips: Clips to score.
            how: ``"zscore"`` or ``"percentile"`` (see :func:`normalize_scores`).
            context: Run settings.
        """
        self._check_fitted()
        return normalize_scores(self.score(clips, context), self.train_scores_, how)

    def training_scores(self, clips: Sequence[Clip] | None = None) -> np.ndarray:
        """Out-of-fold scores of the training clips, as computed by :meth:`fit`."""
        self._check_fitted()
        return np.asarray(self.train_scores_, dtype=np.float64)

    @abc.abstractmethod
    def _save_state(self, directory: Path) -> dict[str, Any]:
        """Write learned state files into ``directory``; return JSON metadata for config.json."""

    @abc.abstractmethod
    def _load_state(self, directory: Path, meta: dict[str, Any]) -> None:
        """Restore learned state from ``directory`` and the metadata :meth:`_save_state` gave."""

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Save to a folder: ``config.json`` (name, params, version, metadata) + state files.

        Every file is written atomically; no Python object is pickled; the files hold
        no machine paths or clock values, so the same fitted detector gives the same bytes.

        Args:
            directory: Destination folder (created if missing).

        Returns:
            The folder.

        Raises:
            DetectorError: If the detector is not fitted.
        """
        import soundwatch

        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = self._save_state(directory)
        config = {
            "name": self.name,
            "class": type(self).__name__,
            "params": self.get_params(deep=False),
            "soundwatch_version": soundwatch.__version__,
            "format_version": FORMAT_VERSION,
            "state": meta,
        }
        write_json(directory / CONFIG_FILE, config)
        log.info("saved detector %s to %s", self.name, directory)
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Detector:
        """Load a detector saved by :meth:`save`.

        Args:
            directory: Folder written by :meth:`save`.

        Returns:
            The fitted detector.

        Raises:
            DetectorError: Missing or invalid folder, a detector saved in another format
                version, or (when called on a subclass) a detector of another kind; the
                message names the file.
        """
        import soundwatch

        directory = Path(directory)
        path = directory / CONFIG_FILE
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise DetectorError(path, "no saved detector here (config.json missing)") from exc
        except (OSError, ValueError) as exc:
            raise DetectorError(path, f"cannot read: {exc}") from exc
        if not isinstance(config, dict) or "name" not in config:
            raise DetectorError(path, "not a soundwatch detector config (no 'name')")
        version = config.get("format_version", 1)
        if version != FORMAT_VERSION:
            newer = isinstance(version, int) and version > FORMAT_VERSION
            raise DetectorError(
                path,
                f"saved in detector format {version} (soundwatch "
                f"{config.get('soundwatch_version', '?')}); this soundwatch "
                f"{soundwatch.__version__} reads format {FORMAT_VERSION}: "
                + ("upgrade soundwatch" if newer else "retrain with `soundwatch train`"),
            )
        if config.get("soundwatch_version") != soundwatch.__version__:
            log.warning("%s was saved by soundwatch %s (this is %s)", directory,
                        config.get("soundwatch_version"), soundwatch.__version__)
        from soundwatch.detectors.registry import detector_class

        klass = detector_class(config.get("class", ""), path)
        params = config.get("params")
        if not isinstance(params, dict):
            raise DetectorError(path, "'params' is not a mapping")
        try:
            detector = klass(**params)
            detector._preset = str(config["name"])
            detector.validate_params()
        except TypeError as exc:
            raise DetectorError(path, f"bad parameters: {exc}") from exc
        except DetectorError as exc:
            raise DetectorError(path, f"invalid detector: {exc}") from exc
        if cls is not Detector and not isinstance(detector, cls):
            raise DetectorError(path, f"holds a {config['name']!r} detector, not a {cls.__name__}")
        detector._load_state(directory, config.get("state") or {})
        return detector

    def __repr__(self) -> str:
        defaults = self.default_params()
        changed = {
            k: v for k, v in self.get_params(deep=False).items()
            if k not in defaults or defaults[k] != v
        }
        inner = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        return f"{type(self).__name__}({inner})"
