"""Exceptions that soundwatch raises for a user's mistake or a bad input file."""

from __future__ import annotations

from os import PathLike

_CONTROL = {i: f"\\x{i:02x}" for i in (*range(32), 127)} | {
    ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"} | {
    0xDC80 + b: f"\\x{0x80 + b:02x}" for b in range(128)}


def printable(text: str) -> str:
    r"""``text`` with control characters and undecodable bytes escaped, for messages and plots.

    A file name may hold any byte but ``/`` and NUL, a newline included; error messages
    name files and must stay on one line. Bytes that are not UTF-8 reach Python as lone
    surrogates (``surrogateescape``), which many writers (terminals, matplotlib) refuse;
    they become ``\xff``-style escapes.
    """
    return text.translate(_CONTROL)


class SoundwatchError(Exception):
    """Base class of every error soundwatch raises on purpose.

    The message always reads ``"<what>: <reason>"`` on one line, so the CLI can print it
    as it is and exit with code 2.

    Args:
        where: The file, folder or option the problem is about.
        reason: What is wrong, in a few words.
    """

    def __init__(self, where: str | PathLike[str], reason: str) -> None:
        self.where = str(where)
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{printable(self.where)}: {self.reason}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        """Pickle by the two fields, so an error raised in a worker process reaches the caller."""
        return (type(self), (self.where, self.reason))


class AudioError(SoundwatchError):
    """An audio file cannot be read, or its content is unusable."""


class DatasetError(SoundwatchError):
    """A dataset folder is missing, empty or inconsistent."""


class ConfigError(SoundwatchError):
    """A configuration file or option is invalid."""


class DetectorError(SoundwatchError):
    """A detector cannot be created, trained, saved or loaded as asked."""


class EvaluationError(SoundwatchError):
    """Scores or ground truth cannot be evaluated as asked."""


class OutputError(SoundwatchError):
    """An output, run or cache path cannot be written (a file in the way, read-only, full)."""


class Interrupted(BaseException):  # noqa: N818 - like KeyboardInterrupt, which it replaces
    """A signal (SIGINT, SIGTERM) stopped a command; not a user mistake, not a crash.

    A ``BaseException`` (as ``KeyboardInterrupt``), so that ``except Exception`` blocks in
    libraries do not swallow it. The CLI prints ``interrupted (<signal>): <detail>`` and
    exits with ``128 + signum`` (130 for SIGINT, 143 for SIGTERM), the shell convention.

    Args:
        signum: The signal number.
        detail: What was kept (the last checkpoint...), in a few words.
    """

    def __init__(self, signum: int, detail: str = "") -> None:
        self.signum = int(signum)
        self.detail = " ".join(str(detail).split())
        super().__init__(self.signum, self.detail)

    @property
    def exit_code(self) -> int:
        """``128 + signum``."""
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        """``SIGINT``, ``SIGTERM``..."""
        import signal

        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    def __str__(self) -> str:
        return f"interrupted ({self.signal_name})" + (f": {self.detail}" if self.detail else "")


class MachinesFailed(SoundwatchError):
    """Some machine types failed (an executor that goes on, e.g. Ray); the others were recorded.

    Attributes:
        failures: ``machine -> reason`` of each failed machine type.
    """

    def __init__(self, where: str | PathLike[str], failures: dict[str, str]) -> None:
        self.failures = dict(failures)
        names = ", ".join(sorted(self.failures))
        super().__init__(where, f"training failed for {len(self.failures)} machine type(s): "
                         f"{names} (the others are saved; fix the data and rerun with --resume)")

    def __reduce__(self) -> tuple[type, tuple[str, dict[str, str]]]:  # noqa: D105
        return (type(self), (self.where, self.failures))
