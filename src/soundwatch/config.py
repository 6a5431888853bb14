"""Typed run configuration: loaded from YAML configs, overridden by CLI flags, validated."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soundwatch.errors import ConfigError

__all__ = [
    "DEVICES",
    "RunConfig",
    "configs_dir",
    "find_config",
    "find_preset",
    "list_configs",
    "list_presets",
    "load_config",
    "parse_channel",
    "parse_param",
    "parse_params",
    "presets_dir",
]

DEVICES = ("auto", "cpu", "cuda")
"""Accepted device names (``cuda:N`` is accepted too)."""

_IGNORED_KEYS = frozenset({"description"})
"""Top-level keys a config file may hold for people (not part of the run's config)."""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def parse_channel(value: int | str, where: str = "--channel") -> int | str:
    """A channel choice: an index (``0`` the first, ``-1`` the last) or ``"mean"``.

    Args:
        value: An int, or its text (``"3"``), or ``"mean"``.
        where: What to name in an error message.

    Returns:
        The index as an int, or ``"mean"``.

    Raises:
        ConfigError: Neither an integer nor ``mean``.
    """
    if isinstance(value, bool):
        raise ConfigError(where, f"channel must be an integer or 'mean', got {value!r}")
    if isinstance(value, int):
        return value
    text = str(value).strip().lower()
    if text == "mean":
        return "mean"
    try:
        return int(text)
    except ValueError as exc:
        raise ConfigError(where, f"channel must be an integer (0 the first) or 'mean', "
                          f"got {value!r}") from exc


@dataclass
class RunConfig:
    """Everything a training run needs, as stored in the run folder's ``config.yaml``.

    Attributes:
        detector: Registered detector name (``soundwatch detectors`` lists them).
        params: Keyword hyper-parameters passed to the detector's ``__init__``; keys the
            detector does not know raise a :class:`~soundwatch.errors.DetectorError`.
        data: Dataset root folder (recorded so that ``soundwatch score RUN`` finds it).
        machines: Machine types to train, or ``None`` for every type found.
        seed: Random seed passed to the detector.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        channel: The audio channel every command of the run reads (an index, 0 the
            first), or ``"mean"`` to mix all channels down (:func:`parse_channel`).
    """

    detector: str
    params: dict[str, Any] = field(default_factory=dict)
    data: str | None = None
    machines: list[str] | None = None
    seed: int = 0
    device: str = "auto"
    channel: int | str = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, where: str = "config") -> RunConfig:
        """Check types and values.

        Args:
            where: What to name in an error message (the YAML file, usually).

        Returns:
            ``self``.

        Raises:
            ConfigError: On the first invalid field.
        """
        if not isinstance(self.detector, str) or not _NAME.match(self.detector):
            raise ConfigError(where, f"detector must be a name, got {self.detector!r}")
        if not isinstance(self.params, dict):
            raise ConfigError(where, f"params must be a mapping, got {type(self.params).__name__}")
        for key in self.params:
            if not isinstance(key, str) or not key.isidentifier():
                raise ConfigError(where, f"params: invalid parameter name {key!r}")
        if self.data is not None and not isinstance(self.data, str | os.PathLike):
            raise ConfigError(where, f"data must be a folder path, got {self.data!r}")
        if self.data is not None:
            self.data = str(self.data)
        if self.machines is not None:
            if isinstance(self.machines, str):
                self.machines = [self.machines]
            if not isinstance(self.machines, list) or not all(
                isinstance(m, str) and m for m in self.machines
            ):
                raise ConfigError(where, f"machines must be a list of names, got {self.machines!r}")
            if not self.machines:
                self.machines = None
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(where, f"seed must be a non-negative integer, got {self.seed!r}")
        if not isinstance(self.device, str) or not _DEVICE.match(self.device):
            raise ConfigError(
                where, f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}"
            )
        self.channel = parse_channel(self.channel, where)
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "config") -> RunConfig:
        """Build a config from a mapping (a parsed YAML document).

        Args:
            data: Keys ``detector`` (required), ``params``, ``data``, ``machines``,
                ``seed``, ``device``; a free-text ``description`` is allowed and ignored.
            where: What to name in an error message.

        Raises:
            ConfigError: Unknown keys, a missing detector, or an invalid value.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(
                where, f"expected a mapping at the top level, got {type(data).__name__}"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        data = {k: v for k, v in data.items() if k not in _IGNORED_KEYS}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise ConfigError(
                where, f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))}; "
                "detector hyper-parameters such as epochs or lr go under 'params:')"
            )
        if "detector" not in data or data["detector"] in (None, ""):
            raise ConfigError(where, "missing 'detector: <name>'")
        values = dict(data)
        if values.get("params") is None:
            values["params"] = {}
        if not isinstance(values["params"], Mapping):
            raise ConfigError(where, "params must be a mapping of name: value")
        values["params"] = dict(values["params"])
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(where, exc.reason) from exc

    def to_dict(self) -> dict[str, Any]:
        """The config as plain YAML-able data (the order of ``config.yaml``)."""
        return {
            "detector": self.detector,
            "params": dict(self.params),
            "data": self.data,
            "machines": list(self.machines) if self.machines else None,
            "seed": self.seed,
            "device": self.device,
            "channel": self.channel,
        }

    def to_yaml(self) -> str:
        """The config as a YAML document."""
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False)

    def override(
        self,
        *,
        detector: str | None = None,
        params: Mapping[str, Any] | None = None,
        data: str | os.PathLike[str] | None = None,
        machines: Iterable[str] | None = None,
        seed: int | None = None,
        device: str | None = None,
        channel: int | str | None = None,
    ) -> RunConfig:
        """A copy with the given values replacing the YAML's (``None`` keeps the YAML value).

        ``params`` are merged key by key into the YAML's params. Changing the detector
        drops the YAML's params (they belong to the other detector) unless new params are
        given too.

        Raises:
            ConfigError: If a new value is invalid.
        """
        new_params = dict(self.params)
        if detector is not None and detector != self.detector:
            new_params = {}
        if params:
            new_params.update(params)
        return RunConfig(
            detector=self.detector if detector is None else detector,
            params=new_params,
            data=self.data if data is None else str(data),
            machines=self.machines if machines is None else list(machines) or None,
            seed=self.seed if seed is None else seed,
            device=self.device if device is None else device,
            channel=self.channel if channel is None else channel,
        )


def load_config(path: str | os.PathLike[str]) -> RunConfig:
    """Read a YAML config file, or a shipped config by name.

    Args:
        path: A YAML file, or the name of a shipped config in :func:`configs_dir`
            (``soundwatch train DATA --config cnn1d-pink`` finds ``configs/cnn1d-pink.yaml``).

    Returns:
        The validated config.

    Raises:
        ConfigError: Missing file, invalid YAML, unknown keys or invalid values.
    """
    import yaml

    file = Path(path)
    if not file.is_file():
        shipped = find_config(str(path))
        if shipped is None:
            names = list_configs()
            hint = f" (shipped configs: {', '.join(names)})" if names else ""
            raise ConfigError(path, f"no such config file or shipped config{hint}")
        file = shipped
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, f"cannot read: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(file, f"invalid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        raise ConfigError(file, "empty config file")
    return RunConfig.from_dict(data, where=str(file))


def configs_dir() -> Path | None:
    """The folder of shipped configs: ``SOUNDWATCH_CONFIGS`` if set, else the package's own.

    The configs ship as package data (``soundwatch/configs/``), so a wheel install has
    them and a ``configs/`` folder in the current directory does not hide them.
    """
    env = os.environ.get("SOUNDWATCH_CONFIGS")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parent / "configs")
    for folder in candidates:
        if folder.is_dir():
            return folder
    return None


def list_configs() -> list[str]:
    """Names of the shipped configs in :func:`configs_dir` (sorted)."""
    folder = configs_dir()
    if folder is None:
        return []
    return sorted(p.stem for p in folder.glob("*.yaml"))


def find_config(name: str) -> Path | None:
    """The shipped config file for ``name`` (``configs/<name>.yaml``), or ``None``."""
    if not _NAME.match(name):
        return None
    folder = configs_dir()
    if folder is None:
        return None
    file = folder / f"{name.removesuffix('.yaml')}.yaml"
    return file if file.is_file() else None


# The names these had when a shipped config was called a "preset" (a word now kept for the
# registered detector presets); kept so that older scripts still import.
presets_dir = configs_dir
list_presets = list_configs
find_preset = find_config


def parse_param(text: str) -> tuple[str, Any]:
    """Parse one ``--param key=value`` option; the value is read as YAML.

    ``lr=1e-3`` gives a float, ``layers=[64, 32]`` a list, ``name=cosine`` a string,
    ``flag=true`` a bool, ``x=null`` None.

    Raises:
        ConfigError: If there is no ``=``, the key is not an identifier, or the value is
            invalid YAML.
    """
    import yaml

    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise ConfigError("--param", f"expected key=value, got {text!r}")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError("--param", f"{key}: value {value!r} is not valid YAML") from exc
    if isinstance(parsed, str) and _looks_numeric(parsed):
        parsed = float(parsed)  # YAML 1.1 reads "1e-3" as a string
    return key, parsed


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity")


def parse_params(items: Iterable[str]) -> dict[str, Any]:
    """Parse several ``key=value`` options into a dict (later keys win)."""
    return dict(parse_param(item) for item in items)
