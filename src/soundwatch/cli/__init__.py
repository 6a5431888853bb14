"""Command-line interface: a thin layer over the library, one module per command group."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading

import typer

from soundwatch.cli.app import app
from soundwatch.errors import Interrupted, SoundwatchError, printable

# Each module registers its commands on ``app``; heavy imports stay inside the commands.
# COMMAND MODULES (one import per module, added as they land):
# isort: split
from soundwatch.cli import (
    components_cmd,  # noqa: F401
    demo_cmd,  # noqa: F401
    download_cmd,  # noqa: F401
    encoders_cmd,  # noqa: F401
    evaluate_cmd,  # noqa: F401
    export_cmd,  # noqa: F401
    feedback_cmd,  # noqa: F401
    history_cmd,  # noqa: F401
    inspect_cmd,  # noqa: F401
    refit_cmd,  # noqa: F401
    render_cmd,  # noqa: F401
    serve_cmd,  # noqa: F401
    synth_cmd,  # noqa: F401
    threshold_cmd,  # noqa: F401
    train_cmd,  # noqa: F401
    watch_cmd,  # noqa: F401
)

__all__ = ["app", "main"]


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signum)


def _os_error_line(exc: OSError) -> str:
    """``<path>: <reason>`` for an OSError (the path from the exception itself)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno is not None and exc.strerror:
        reason = exc.strerror[:1].lower() + exc.strerror[1:]
    path = exc.filename if exc.filename is not None else exc.filename2
    if path is None:
        return reason
    return f"{printable(os.fsdecode(path) if isinstance(path, bytes) else str(path))}: {reason}"


def main() -> None:
    """Entry point of the ``soundwatch`` console script.

    A :class:`~soundwatch.errors.SoundwatchError` (a user's mistake or a bad file) and an
    operating-system error on a path (a file where a folder should be, read-only, disk
    full) are printed as one line on stderr (``error: <path>: <reason>``) and exit with
    code 2, never as a traceback. SIGINT and SIGTERM stop the command as
    :class:`~soundwatch.errors.Interrupted`: what was finished is kept (training keeps its
    last checkpoint), one line says so, and the exit code is 130 or 143.
    """
    # One intra-op thread unless the user sets OMP_NUM_THREADS (read when torch loads): on
    # 2 cores, two spinning OpenMP threads slow down up to 50-fold as soon as anything else
    # runs, sleeping ones (OMP_WAIT_POLICY=PASSIVE) 3-fold even on an idle machine, while one
    # thread costs about a third against two on an idle machine (benchmarks/training.py).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for stream in (sys.stdout, sys.stderr):  # file names may hold any byte: never crash on one
        with contextlib.suppress(AttributeError, ValueError, OSError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    previous = {}
    if threading.current_thread() is threading.main_thread():  # signal() works there only
        previous = {signum: signal.signal(signum, _raise_interrupted)
                    for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        _run_app()
    finally:  # main() may run in-process (tests, notebooks): give the handlers back
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _run_app() -> None:
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:  # typer.Exit(n): click returns n in this mode
            sys.exit(code)
    except SoundwatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as exc:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C: let cleanup end
                signal.signal(signum, signal.SIG_IGN)
        print(str(exc), file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted (SIGINT)", file=sys.stderr)
        sys.exit(130)
    except OSError as exc:  # a path the OS refused: NotADirectoryError, EACCES, ENOSPC...
        print(f"error: {_os_error_line(exc)}", file=sys.stderr)
        sys.exit(2)
    except SystemExit:
        raise
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(1)
    except typer.TyperException as exc:  # usage errors: bad option, missing argument
        exc.show()
        sys.exit(2)
