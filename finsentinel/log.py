"""Logging set-up, called once at the entry point (the CLI)."""

from __future__ import annotations

import logging
import sys


def configure(level: str = "INFO") -> None:
    """Log to stderr with timestamps; quiet the chattiest libraries."""
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    for noisy in ("kafka", "elastic_transport", "urllib3", "filelock", "httpx", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
