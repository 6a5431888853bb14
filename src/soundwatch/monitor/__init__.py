"""Continuous monitoring: a folder watcher, an HTTP scoring service, a SQLite history, a page.

Importing this package is light; FastAPI, uvicorn, watchdog and prometheus-client (the
``serve`` extra) are imported by the modules that need them.
"""

from __future__ import annotations

__all__ = ["EXTRA_HINT"]

EXTRA_HINT = "install the serve extra: pip install 'soundwatch[serve]'"
"""The one-line hint shown when a monitoring dependency is missing."""
