"""Language routing, masking and risk-event flags in the classify stage; the router built from settings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from finsentinel.errors import ConfigError, ModelError
from finsentinel.settings import NlpSettings
from nlp.base import Prediction
from nlp.engine import InferenceEngine
from nlp.linking import EntityLinker, Watchlist
from nlp.routing import ITEM_LANGUAGES, Router
from nlp.serving import build_router, load_router
from nlp.stage import PII_MASKED, UNSUPPORTED_LANG, make_classify_handler, score_items
from tests.test_nlp_stage import item, record
from tests.tiny_model import TINY_TOPICS, make_tiny_model_dir


class Fixed:
    """A classifier that answers one topic and records what it saw."""

    def __init__(self, name: str, topics: tuple[str, ...] = ("Macro",), events: dict[str, float] | None = None):
        self.version, self.topics, self.events = f"{name}@test", topics, events
        self.calls: list[list[str]] = []

    def classify(self, texts: Sequence[str]) -> list[Prediction]:
        self.calls.append(list(texts))
        return [
            Prediction.from_probabilities({self.topics[0]: 1.0}, {"negative": 0.6, "neutral": 0.3, "positive": 0.1},
                                          self.events)
            for _ in texts
        ]


@pytest.fixture(scope="module")
def linker() -> EntityLinker:
    return EntityLinker(Watchlist.load())


def test_items_go_to_the_model_of_their_language(linker: EntityLinker) -> None:
    en, zh, default = Fixed("en"), Fixed("zh"), Fixed("multi")
    router = Router(default, {"en": en, "zh": zh}, default_languages=())
    items = [item("Aurora shares plunge"), item("极光汽车股价暴跌", lang="zh"), item("Une annonce", lang="other"),
             item("Halcyon beats", lang="en")]
    scored = score_items(items, router, linker)
    assert en.calls == [[items[0].text, items[3].text]] and zh.calls == [[items[1].text]]
    assert default.calls == [[items[2].text]]
    assert [s.model_version for s in scored] == ["en@test", "zh@test", "multi@test", "en@test"]
    assert [s.flags for s in scored] == [(), (), (UNSUPPORTED_LANG,), ()]


def test_default_languages_are_not_flagged() -> None:
    router = Router(Fixed("multi"), {}, default_languages=("en", "zh"))
    assert not router.route("zh").flagged and router.route("other").flagged
    assert router.classifiers() == [router.default]


def test_personal_data_is_masked_before_the_model_and_the_output(linker: EntityLinker) -> None:
    classifier = Fixed("en")
    raw = item("Aurora Motors CFO resigns, call 13812345678", body="write to cfo@aurora.com")
    (scored,) = score_items([raw], classifier, linker)
    assert "13812345678" not in classifier.calls[0][0] and "[PHONE]" in classifier.calls[0][0]
    assert scored.title == "Aurora Motors CFO resigns, call [PHONE]" and scored.body == "write to [EMAIL]"
    assert PII_MASKED in scored.flags and scored.id == raw.id and scored.entities == ("aurora-motors",)
    (unmasked,) = score_items([raw], classifier, linker, mask=False)
    assert unmasked.title == raw.title and PII_MASKED not in unmasked.flags


def test_risk_events_become_flags(linker: EntityLinker) -> None:
    classifier = Fixed("zh", events={"信批违规": 0.9, "交易违规": 0.7, "其他": 0.1})
    (scored,) = score_items([item("公司信披违规", lang="zh")], classifier, linker)
    assert scored.flags == ("risk:信批违规", "risk:交易违规")
    other = Fixed("zh", events={"信批违规": 0.1, "其他": 0.8})
    (plain,) = score_items([item("公司公告", lang="zh")], other, linker)
    assert plain.flags == ()  # 'other / no risk event' is not a risk flag


def test_handler_takes_a_router(linker: EntityLinker) -> None:
    router = Router(Fixed("multi"), {"zh": Fixed("zh")})
    (outcome,) = make_classify_handler(router, linker, "out")([record(item("北风银行", lang="zh").to_json(), 0)])
    assert b'"model_version":"zh@test"' in outcome.outputs[0].value.replace(b" ", b"")


def test_router_from_settings_shares_engines_and_checks_the_taxonomy(tmp_path: Path) -> None:
    model = make_tiny_model_dir(tmp_path / "tiny")
    settings = NlpSettings(model_dir=model, models={"en": model, "zh": tmp_path / "tiny"}, backend="torch")
    router = build_router(settings)
    assert isinstance(router.default, InferenceEngine) and len(router.classifiers()) == 1
    loaded = load_router(settings.model_copy(update={"taxonomy": {"en": list(TINY_TOPICS)}}))
    assert loaded.route("en").classifier.topics == TINY_TOPICS
    with pytest.raises(ModelError, match=r"nlp.taxonomy.zh expects topics .* \(missing \['Macro'\]"):
        load_router(settings.model_copy(update={"taxonomy": {"zh": [*TINY_TOPICS, "Macro"]}}))
    missing = NlpSettings(model_dir=tmp_path / "nope", backend="onnx-int8")
    with pytest.raises(ModelError, match="does not exist"):
        load_router(missing)


@pytest.mark.parametrize(
    ("update", "key"),
    [
        ({"models": {"ZH": "zh-model"}}, "nlp.models"),  # zh items would silently go to the default model
        ({"models": {"zh-CN": "zh-model"}}, "nlp.models"),
        ({"default_languages": ["EN", "zh"]}, "nlp.default_languages"),  # en items would be flagged
        ({"taxonomy": {"Zh": ["Macro"]}}, "nlp.taxonomy"),  # would check the default model instead
    ],
)
def test_a_language_items_never_carry_is_refused(tmp_path: Path, update: dict[str, object], key: str) -> None:
    settings = NlpSettings.model_validate({"model_dir": str(tmp_path / "default"), **update})
    with pytest.raises(ConfigError, match=rf"{key} names the language '[^']+'.*'en', 'zh', 'other'"):
        build_router(settings)
    for lang in ITEM_LANGUAGES:  # the languages the router accepts are those a raw item can carry
        assert item("x", lang=lang).lang == lang


def test_reference_models_are_used_when_present(tmp_path: Path) -> None:
    from nlp.serving import routes

    settings = NlpSettings()
    assert routes(settings, tmp_path) == {}
    make_tiny_model_dir(tmp_path / "models" / "finsentinel-zh")
    assert routes(settings, tmp_path) == {"zh": tmp_path / "models" / "finsentinel-zh"}
    assert routes(settings.model_copy(update={"reference_models": False}), tmp_path) == {}
    explicit = settings.model_copy(update={"models": {"en": tmp_path / "x"}})
    assert routes(explicit, tmp_path) == {"en": tmp_path / "x"}
