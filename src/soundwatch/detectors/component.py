"""Component: the scikit-learn-style parameter handling shared by scorers and objectives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from soundwatch.errors import DetectorError
from soundwatch.registry import accepted_params

if TYPE_CHECKING:
    from typing import Self

__all__ = ["Component"]


class Component:
    """A part of a detector with explicit keyword hyper-parameters stored unchanged.

    ``kind`` names the part in error messages (``"scorer"``, ``"objective"``).
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "component"

    @classmethod
    def param_names(cls) -> list[str]:
        """The ``__init__`` keyword arguments."""
        return list(accepted_params(cls)[0])

    def _store(self, values: dict[str, Any]) -> None:
        """Store each ``__init__`` argument unchanged (call as ``self._store(locals())``)."""
        for name in self.param_names():
            setattr(self, name, values[name])

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The hyper-parameters and their values."""
        return {name: getattr(self, name) for name in self.param_names()}

    def set_params(self, **params: Any) -> Self:
        """Change hyper-parameters.

        Raises:
            DetectorError: Unknown parameter.
        """
        names = set(self.param_names())
        for key, value in params.items():
            if key not in names:
                raise DetectorError(f"{self.kind} {self.name}", f"unknown parameter {key!r}")
            setattr(self, key, value)
        return self

    def validate(self) -> None:
        """Check the parameter values.

        Raises:
            DetectorError: A bad value, named.
        """

    def unfitted_copy(self) -> Self:
        """A new component with the same parameters and nothing learned."""
        return type(self)(**self.get_params())

    def _where(self, param: str) -> str:
        return f"{self.kind} {self.name}.{param}"

    def _check_int(self, param: str, low: int = 1) -> None:
        value = getattr(self, param)
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise DetectorError(self._where(param), f"must be a whole number >= {low}, "
                                f"got {value!r}")

    def _check_number(self, param: str, low: float, high: float | None = None,
                      low_open: bool = False, high_open: bool = False) -> None:
        value = getattr(self, param)
        ok = isinstance(value, int | float | np.floating) and not isinstance(value, bool)
        if ok:
            ok = value > low if low_open else value >= low
            if ok and high is not None:
                ok = value < high if high_open else value <= high
        if not ok:
            lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
            span = f"{lo}{low}, {high}{hi}" if high is not None else f">= {low}"
            raise DetectorError(self._where(param), f"must be a number in {span}, got {value!r}")

    def _check_choice(self, param: str, choices: Sequence[Any]) -> None:
        if getattr(self, param) not in choices:
            raise DetectorError(self._where(param), f"{getattr(self, param)!r} is not one of "
                                f"{', '.join(map(repr, choices))}")

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({inner})"
