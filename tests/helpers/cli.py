"""Run the ``soundwatch`` console entry point in-process (one helper for every CLI test)."""

from __future__ import annotations

import sys


def run_cli(monkeypatch, capsys, *args: object) -> tuple[int, str, str]:
    """``soundwatch ARGS...`` through :func:`soundwatch.cli.main`: (exit code, stdout, stderr)."""
    from soundwatch.cli import main

    monkeypatch.setattr(sys, "argv", ["soundwatch", *map(str, args)])
    monkeypatch.setenv("COLUMNS", "200")
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def run_argv(args, capsys) -> tuple[int, str, str]:
    """:func:`run_cli` for tests without ``monkeypatch``: ``sys.argv`` restored by hand."""
    from soundwatch.cli import main

    old = sys.argv
    sys.argv = ["soundwatch", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


def cli_error(monkeypatch, capsys, *args: object) -> tuple[int, str]:
    """Like :func:`run_cli`, returning (exit code, stderr)."""
    code, _, err = run_cli(monkeypatch, capsys, *args)
    return code, err


def one_error_line(err: str) -> str:
    """The single ``error: ...`` line of a command's stderr (and no traceback)."""
    lines = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]
