"""The one exception hierarchy of FinSentinel.

Every error that crosses a module boundary is a :class:`FinSentinelError`. Adapters
translate backend errors (sqlite3, kafka, elasticsearch, torch) into these classes,
and messages say what was expected, what came, and how to fix it.
"""

from __future__ import annotations


class FinSentinelError(Exception):
    """Root of all FinSentinel errors."""


class ConfigError(FinSentinelError):
    """Settings are missing, malformed or inconsistent."""


class SchemaError(FinSentinelError):
    """A message does not match the expected record schema (the record is dead-lettered)."""


class BusError(FinSentinelError):
    """The message bus cannot be reached or refused an operation."""


class IndexStoreError(FinSentinelError):
    """The search index cannot be reached or refused an operation."""


class ModelError(FinSentinelError):
    """A model directory is missing, corrupt, or of the wrong kind."""


class SourceError(FinSentinelError):
    """An ingest source could not be read or parsed."""


__all__ = [
    "BusError",
    "ConfigError",
    "FinSentinelError",
    "IndexStoreError",
    "ModelError",
    "SchemaError",
    "SourceError",
]
