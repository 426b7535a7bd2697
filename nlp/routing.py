"""Language routing: which classifier scores an item, by its ``lang``.

Settings map languages to model directories (``nlp.models: {en: models/finsentinel-en, zh:
models/finsentinel-zh}``) or leave one multilingual model (``nlp.model_dir``) for everything.
Items in a language with no route are scored by the default model; unless the default model is
declared for that language (``nlp.default_languages``) they are flagged ``lang_unsupported`` so
that readers and the detector can discount them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from finsentinel.errors import ModelError
from nlp.base import Classifier

log = logging.getLogger(__name__)

ITEM_LANGUAGES = ("en", "zh", "other")
"""The languages a raw item can carry (``RawItem.lang``): the only keys a route can match."""


@dataclass(frozen=True)
class Route:
    """The classifier for one language and whether its items are flagged as unsupported."""

    classifier: Classifier
    flagged: bool


class Router:
    """Picks a classifier per language; see the module docstring."""

    def __init__(
        self,
        default: Classifier,
        routes: Mapping[str, Classifier] | None = None,
        default_languages: Sequence[str] = ("en", "zh"),
    ) -> None:
        self.default = default
        self.routes = dict(routes or {})
        self.default_languages = frozenset(default_languages)

    def route(self, lang: str) -> Route:
        """The classifier for ``lang`` (flagged when neither routed nor declared for the default)."""
        if lang in self.routes:
            return Route(self.routes[lang], False)
        return Route(self.default, lang not in self.default_languages)

    def classifiers(self) -> list[Classifier]:
        """Every distinct classifier, default first."""
        seen: list[Classifier] = [self.default]
        for classifier in self.routes.values():
            if all(classifier is not other for other in seen):
                seen.append(classifier)
        return seen

    def load(self) -> None:
        """Load every classifier now (fail fast on a missing or corrupt model)."""
        for classifier in self.classifiers():
            load = getattr(classifier, "load", None)
            if callable(load):
                load()

    def check_taxonomy(self, taxonomy: Mapping[str, Sequence[str]]) -> None:
        """Each configured language's classifier must have exactly the configured topics."""
        for lang, topics in taxonomy.items():
            classifier = self.route(lang).classifier
            if set(classifier.topics) != set(topics):
                missing = sorted(set(topics) - set(classifier.topics))
                extra = sorted(set(classifier.topics) - set(topics))
                raise ModelError(
                    f"nlp.taxonomy.{lang} expects topics the model {classifier.version} serving '{lang}' does "
                    f"not have (missing {missing}, unexpected {extra}); train it on that taxonomy or fix "
                    "nlp.taxonomy"
                )
