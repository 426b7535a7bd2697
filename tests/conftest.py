"""Shared fixtures. Tests never touch the network or a model hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Reference models trained in this checkout (`make model` writes models/finsentinel-en|zh) must not
# change what the tests classify with; tests of the routing itself set the option explicitly.
os.environ.setdefault("FINSENTINEL_NLP__REFERENCE_MODELS", "false")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data beside the repository, or skip where a clone has none."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared datasets at {SHARED_DATA} (present in CI, absent in a user's clone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def seed_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real default model, trained once per test session (about 80 s on 2 idle cores)."""
    from training.seed import ensure_seed_model

    return ensure_seed_model(tmp_path_factory.mktemp("seed") / "finsentinel-seed")
