"""A parser bug that hits one entry, for the tests that one bad entry never sinks its batch."""

from __future__ import annotations

import pytest


def poison_language_detection(monkeypatch: pytest.MonkeyPatch, marker: str = "poison") -> None:
    """Make ingest's language detection raise for every text containing ``marker``."""
    import ingest.parse as module

    real = module.detect_lang

    def detect(text: str) -> str:
        if marker in text:
            raise RuntimeError("detector bug")
        return real(text)

    monkeypatch.setattr(module, "detect_lang", detect)
