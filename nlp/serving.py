"""Build the classify stage's classifiers from :class:`finsentinel.settings.NlpSettings`.

One :class:`nlp.engine.InferenceEngine` (or :class:`nlp.ensemble.EnsembleEngine`) per distinct model directory (the default ``model_dir`` and
those of ``nlp.models``), on the configured backend, behind a :class:`nlp.routing.Router`.
"""

from __future__ import annotations

from pathlib import Path

from finsentinel.errors import ConfigError
from finsentinel.settings import NlpSettings
from nlp.engine import InferenceEngine
from nlp.ensemble import open_engine
from nlp.model import ENSEMBLE_FILE, SPEC_FILE
from nlp.routing import ITEM_LANGUAGES, Router

REFERENCE_MODELS = {"en": Path("models/finsentinel-en"), "zh": Path("models/finsentinel-zh")}


def routes(settings: NlpSettings, root: Path | None = None) -> dict[str, Path]:
    """``nlp.models``, or (when empty and ``reference_models`` is on) the reference models that exist.

    ``root`` is the directory relative paths are taken from (default: the working directory).
    """
    if settings.models or not settings.reference_models:
        return dict(settings.models)
    base = root or Path.cwd()
    return {
        lang: base / path for lang, path in REFERENCE_MODELS.items()
        if (base / path / SPEC_FILE).is_file() or (base / path / ENSEMBLE_FILE).is_file()
    }


def make_engine(settings: NlpSettings, model_dir: Path) -> InferenceEngine:
    """An engine over a model or ensemble directory with the settings' backend, batches and threads."""
    return open_engine(
        model_dir,
        backend=settings.backend,
        max_batch=settings.batch_size,
        max_wait_ms=settings.max_wait_ms,
        max_length=settings.max_length,
        threads=settings.threads,
    )


def check_languages(settings: NlpSettings) -> None:
    """Every language in ``nlp.models``, ``default_languages`` and ``taxonomy`` must be one items carry;
    another ('ZH', 'zh-CN') would never match, and its items would go to the default model unnoticed."""
    for key, langs in (("nlp.models", settings.models), ("nlp.default_languages", settings.default_languages),
                       ("nlp.taxonomy", settings.taxonomy)):
        for lang in langs:
            if lang not in ITEM_LANGUAGES:
                known = ", ".join(repr(v) for v in ITEM_LANGUAGES)
                raise ConfigError(
                    f"{key} names the language {lang!r}, but items carry only {known} (set by ingest); "
                    "write it as one of those codes"
                )


def build_router(settings: NlpSettings) -> Router:
    """The router over every configured model; constructs only (call ``load()`` to read the models).

    :class:`ConfigError` when the settings name a language no item carries (see :func:`check_languages`).
    """
    check_languages(settings)
    engines: dict[Path, InferenceEngine] = {}

    def engine(path: Path) -> InferenceEngine:
        key = path.expanduser().absolute()
        if key not in engines:
            engines[key] = make_engine(settings, path)
        return engines[key]

    default = engine(settings.model_dir)
    routed = {lang: engine(path) for lang, path in routes(settings).items()}
    return Router(default, routed, settings.default_languages)


def load_router(settings: NlpSettings) -> Router:
    """:func:`build_router`, loaded and checked against ``nlp.taxonomy`` (fails fast, one clear line)."""
    router = build_router(settings)
    router.load()
    router.check_taxonomy(settings.taxonomy)
    return router
