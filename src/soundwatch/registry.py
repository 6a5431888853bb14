"""One generic registry type (timm style) for front-ends, encoders, objectives, scorers..."""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any, Generic, TypeVar

from soundwatch.errors import ConfigError, SoundwatchError

__all__ = ["Registry", "accepted_params"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def accepted_params(factory: Callable[..., Any]) -> tuple[dict[str, Any], bool]:
    """Keyword parameters a class (its ``__init__``) or function accepts, with defaults.

    Returns:
        ``(name -> default or inspect.Parameter.empty, has_var_keyword)``.
    """
    target = factory.__init__ if inspect.isclass(factory) else factory  # type: ignore[misc]
    sig = inspect.signature(target)
    names = {
        p.name: p.default
        for p in sig.parameters.values()
        if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }
    return names, any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


class Registry(Generic[T]):
    """Named factories of one kind of part, filled by decorators and entry-point plugins.

    Built-in entries live in ``modules``, imported the first time a name is looked up (so
    importing soundwatch stays light); third-party packages add entries through the
    entry-point group ``soundwatch.<kind>s``.

    Args:
        kind: What is registered (``"scorer"``): used in error messages.
        modules: Modules whose import registers the built-in entries.
        error: The :class:`SoundwatchError` subclass raised for unknown names.
    """

    def __init__(
        self, kind: str, modules: Iterable[str] = (), error: type[SoundwatchError] = ConfigError
    ) -> None:
        self.kind = kind
        self.modules = tuple(modules)
        self.error = error
        self.entry_point_group = f"soundwatch.{kind.replace(' ', '_')}s"
        self._entries: dict[str, T] = {}
        self._loaded = False

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering a class or entry function under ``name``.

        On a class, sets ``cls.name = name``. The first docstring line is its description.

        Raises:
            SoundwatchError: If another object already holds ``name``.
        """

        def decorator(obj: T) -> T:
            previous = self._entries.get(name)
            if previous is not None and previous is not obj:
                same = (
                    getattr(previous, "__qualname__", None) == getattr(obj, "__qualname__", None)
                    and getattr(previous, "__module__", None) == getattr(obj, "__module__", None)
                )
                if not same:  # re-importing the same module (reload) is fine
                    raise self.error(name, f"{self.kind} name already registered by {previous!r}")
            if inspect.isclass(obj):
                obj.name = name  # type: ignore[attr-defined]
            self._entries[name] = obj
            return obj

        return decorator

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self.modules:
            importlib.import_module(module)
        for entry in metadata.entry_points(group=self.entry_point_group):
            try:
                entry.load()
            except Exception as exc:  # a broken plugin must not break the built-in entries
                log.warning("%s plugin %s failed to load: %s", self.kind, entry.name, exc)

    def get(self, name: str) -> T:
        """The entry registered under ``name``.

        Raises:
            SoundwatchError: Unknown name (the message lists the known ones).
        """
        self._load()
        try:
            return self._entries[name]
        except (KeyError, TypeError) as exc:
            known = ", ".join(sorted(self._entries)) or "none"
            raise self.error(name, f"unknown {self.kind} (known: {known})") from exc

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def names(self) -> list[str]:
        """Sorted registered names."""
        self._load()
        return sorted(self._entries)

    def describe(self) -> dict[str, str]:
        """Name -> first line of the entry's docstring."""
        self._load()
        out = {}
        for name in sorted(self._entries):
            doc = (inspect.getdoc(self._entries[name]) or "").strip()
            out[name] = doc.splitlines()[0] if doc else ""
        return out

    def params(self, name: str) -> dict[str, Any]:
        """The keyword parameters of an entry and their defaults (``empty`` when required)."""
        return accepted_params(self.get(name))[0]  # type: ignore[arg-type]

    def check_params(self, name: str, params: dict[str, Any], where: str | None = None) -> None:
        """Raise for parameters the entry does not accept.

        Raises:
            SoundwatchError: Unknown parameter names (the message lists the accepted ones).
        """
        accepted, var_kw = accepted_params(self.get(name))  # type: ignore[arg-type]
        unknown = sorted(set(params) - set(accepted))
        if unknown and not var_kw:
            raise self.error(
                where or f"{self.kind} {name}",
                f"unknown parameter(s) {', '.join(unknown)} "
                f"(accepted: {', '.join(sorted(accepted)) or 'none'})",
            )

    def create(self, name: str, **params: Any) -> Any:
        """Call the entry registered under ``name`` with keyword ``params``.

        The result's ``validate()`` is called when it has one (scorers, objectives).

        Raises:
            SoundwatchError: Unknown name or parameter, a TypeError from the entry, or a
                value ``validate()`` refuses.
        """
        factory = self.get(name)
        self.check_params(name, params)
        try:
            obj = factory(**params)  # type: ignore[operator]
        except TypeError as exc:
            raise self.error(f"{self.kind} {name}", f"bad parameters: {exc}") from exc
        validate = getattr(obj, "validate", None)
        if callable(validate):
            validate()
        return obj
