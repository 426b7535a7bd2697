"""The real seed model (bundled MiniLM + seed data): trains in ~1.5 min on 2 cores, gets plain cases right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlp.model import CARD_JSON
from nlp.torch_backend import TorchClassifier

# Written after the seed data was frozen and never used to tune it: plainly negative headlines about
# companies that occur nowhere in the seed data (the demo watchlist's and others).
PLAINLY_NEGATIVE = [
    "Aurora Motors shares plunge after regulator opens fraud probe",
    "Kestrel Cloud hit by massive customer data leak",
    "Northwind Bank posts surprise loss, slashes dividend",
    "Lumen Pharmaceuticals drug fails late-stage trial, stock tumbles",
    "Regulators sue Jinhai Securities over market manipulation",
    "Meridian Foods recalls baby formula after bacteria found",
    "Pacific Grid Energy chairman arrested in corruption case",
    "Zhongtian Semiconductor warns of steep revenue decline",
    "Brightline Rail files for bankruptcy protection",
    "Vexa Labs accused of faking clinical data, shares collapse",
    "极光汽车遭证监会立案调查，股价暴跌",
    "隼云科技发生大规模数据泄露",
    "北风银行意外亏损，取消分红",
    "流明制药新药临床试验失败，股价大跌",
    "金海证券涉嫌操纵市场被起诉",
    "子午食品婴儿奶粉检出细菌，紧急召回",
    "太平洋电网董事长涉嫌腐败被捕",
    "中天半导体预告营收大幅下滑",
    "恒川铁路申请破产保护",
    "维萨实验室被指临床数据造假，股价崩盘",
]


@pytest.mark.slow
def test_seed_model_card_reports_high_heldout_metrics(seed_model: Path) -> None:
    card = json.loads((seed_model / CARD_JSON).read_text(encoding="utf-8"))
    metrics = card["validation_metrics"]
    assert metrics["sentiment"]["macro_f1"] > 0.95 and metrics["topic"]["macro_f1"] > 0.95
    for lang in ("en", "zh"):
        assert metrics["sentiment"]["by_lang"][lang]["accuracy"] > 0.95
    assert card["extra_evaluations"]["probe"]["sentiment"]["accuracy"] > 0.8
    assert card["training"]["added_tokens"] > 300  # the Chinese characters MiniLM lacks


@pytest.mark.slow
def test_seed_model_calls_plainly_negative_headlines_negative(seed_model: Path) -> None:
    predictions = TorchClassifier(seed_model).classify(PLAINLY_NEGATIVE)
    wrong = [
        (t, p.sentiment)
        for t, p in zip(PLAINLY_NEGATIVE, predictions, strict=True)
        if p.sentiment != "negative"
    ]
    assert len(wrong) <= 1, wrong
    assert predictions[0].sentiment == "negative" and predictions[10].sentiment == "negative"
