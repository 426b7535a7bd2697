"""The n-gram half of the ensemble: fit, pickle-free round trip, and averaging in training and the engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from finsentinel.errors import ModelError
from finsentinel.schema import SENTIMENTS
from nlp.engine import InferenceEngine
from nlp.model import CARD_JSON, NGRAM_FILES, load_model, weights_sha256
from nlp.ngram import NGRAM_JSON, NgramModel, fit_ngram
from tests.tiny_model import TINY_TOPICS, make_tiny_base_dir, tiny_rows
from training.args import TrainingArgs
from training.train import train_multitask

TEXTS = ["Aurora Motors shares plunge", "公司利润增长，股价涨", "Halcyon to report Q3 results", "unseen words only"]


@pytest.mark.parametrize("analysers", ["word+char", "word"])
def test_fit_round_trip_and_label_order(tmp_path: Path, analysers: str) -> None:
    rows = tiny_rows() * 2
    labels: dict[str, list[str]] = {"topic": list(TINY_TOPICS), "sentiment": list(SENTIMENTS)}
    model = fit_ngram(rows, labels, analysers, c=10.0)
    probs = model.probabilities(TEXTS)
    assert probs["topic"].shape == (4, 3) and np.allclose(probs["sentiment"].sum(1), 1.0)
    # trained on the rows themselves, it recovers their sentiment
    train_probs = model.probabilities([r["text"] for r in rows])["sentiment"]
    assert [SENTIMENTS[i] for i in train_probs.argmax(1)] == [r["label"] for r in rows]
    model.save(tmp_path)
    again = NgramModel.load(tmp_path)
    for head in ("topic", "sentiment"):
        assert np.allclose(again.probabilities(TEXTS)[head], probs[head], atol=1e-6)
    assert not list(tmp_path.glob("*.pkl")) and json.loads((tmp_path / NGRAM_JSON).read_text("utf-8"))["labels"] == labels


def test_binary_heads_and_absent_classes(tmp_path: Path) -> None:
    rows = [{"text": t, "label": lab} for t, lab in (("up up", "positive"), ("down down", "negative")) * 3]
    model = fit_ngram(rows, {"sentiment": list(SENTIMENTS)}, "char")
    probs = model.probabilities(["up", "down"])["sentiment"]
    assert probs[:, 1].max() < 1e-6  # 'neutral' never occurred: never predicted
    assert probs[0].argmax() == 2 and probs[1].argmax() == 0
    with pytest.raises(ModelError, match="expected n-gram analysers"):
        fit_ngram(rows, {"sentiment": list(SENTIMENTS)}, "bpe")
    with pytest.raises(ModelError, match="missing or unreadable"):
        NgramModel.load(tmp_path)


EVENT_ROWS: list[dict[str, Any]] = [
    {"text": "公司高管涉嫌违规减持", "events": ["交易违规", "高管负面"]},
    {"text": "大股东违规减持股份", "events": ["交易违规"]},
    {"text": "董事长失联，公司停业", "events": ["失联跑路", "歇业停业"]},
    {"text": "平台老板失联跑路", "events": ["失联跑路"]},
    {"text": "公司发布年度报告", "events": ["其他"]},
    {"text": "召开股东大会公告", "events": ["其他"]},
] * 2
EVENTS = ["交易违规", "其他", "失联跑路", "歇业停业", "涉嫌传销", "高管负面"]


def test_event_head_is_one_sigmoid_per_type(tmp_path: Path) -> None:
    labels: dict[str, list[str]] = {"topic": list(TINY_TOPICS), "sentiment": list(SENTIMENTS), "events": EVENTS}
    model = fit_ngram([*tiny_rows(), *EVENT_ROWS], labels, "char", c=10.0)
    probs = model.probabilities([str(r["text"]) for r in EVENT_ROWS[:6]] + ["无关的句子"])["events"]
    assert probs.shape == (7, len(EVENTS)) and not np.allclose(probs.sum(1), 1.0)  # independent types
    assert probs[:, EVENTS.index("涉嫌传销")].max() < 1e-6  # a type no row has: never predicted
    chosen = [sorted(EVENTS[j] for j in np.flatnonzero(row >= 0.5)) for row in probs[:6]]
    assert chosen == [sorted(r["events"]) for r in EVENT_ROWS[:6]]
    model.save(tmp_path)
    assert np.allclose(NgramModel.load(tmp_path).probabilities(["违规减持"])["events"],
                       model.probabilities(["违规减持"])["events"], atol=1e-6)
    every = fit_ngram([{"text": "a b", "events": ["x"]}, {"text": "b c", "events": ["x"]}], {"events": ["x"]}, "char")
    assert every.probabilities(["zzz"])["events"][0, 0] == 1.0  # every row has it


@pytest.mark.slow
def test_the_engine_averages_the_event_head_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nlp.torch_backend import predict_proba

    base = make_tiny_base_dir(tmp_path / "base")
    args = TrainingArgs(epochs=1, batch_size=6, lr=1e-3, max_length=24, ngram_weight=0.4, ngram_analysers="char")
    rows = [*tiny_rows(), *EVENT_ROWS]
    result = train_multitask(base, rows, rows, args, tmp_path / "m")
    assert result.metrics["events"]["n"] == len(EVENT_ROWS)
    loaded = load_model(tmp_path / "m")
    texts = [str(r["text"]) for r in EVENT_ROWS]
    network = predict_proba(loaded.model, loaded.tokenizer, texts, 8, 24)[2].numpy()
    ngram = NgramModel.load(tmp_path / "m").probabilities(texts)["events"]
    engine = InferenceEngine(tmp_path / "m", "torch").probabilities(texts)[2]
    assert np.allclose(engine, 0.6 * network + 0.4 * ngram, atol=1e-5)
    card = json.loads((tmp_path / "m" / CARD_JSON).read_text(encoding="utf-8"))
    assert card["validation_metrics"]["events"] == result.metrics["events"]
    # `finsentinel ngram --events` refits the event head of a trained model; unknown types are refused
    from finsentinel.cli import main

    files = {name: tmp_path / f"{name}.jsonl" for name in ("rows", "events", "bad")}
    as_file = [{"text": r["text"], "topics": r["events"]} for r in EVENT_ROWS]  # the FinESE file format
    for name, content in (("rows", tiny_rows()), ("events", as_file), ("bad", [{"text": "x", "topics": ["新"]}])):
        files[name].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in content), "utf-8")
    argv = ["ngram", "--model", str(tmp_path / "m"), "--train", str(files["rows"]), "--analysers", "char"]
    assert main([*argv, "--events", str(files["events"]), "--valid-events", str(files["events"])]) == 0
    assert json.loads(capsys.readouterr().out)["ensemble"]["events"]["n"] == len(EVENT_ROWS)
    assert "events" in json.loads((tmp_path / "m" / CARD_JSON).read_text(encoding="utf-8"))["ngram"]["heads"]
    assert main([*argv, "--events", str(files["bad"])]) == 2
    assert "event types ['新'] are not event types of the model" in capsys.readouterr().err


@pytest.mark.slow
def test_training_with_an_ngram_weight_writes_an_ensemble(tmp_path: Path) -> None:
    base = make_tiny_base_dir(tmp_path / "base")
    args = TrainingArgs(epochs=1, batch_size=6, lr=1e-3, max_length=24, ngram_weight=0.5, ngram_analysers="char")
    rows = tiny_rows()
    result = train_multitask(base, rows, rows, args, tmp_path / "m")
    spec = load_model(tmp_path / "m").spec
    assert spec.ngram_weight == 0.5 and all((tmp_path / "m" / n).is_file() for n in NGRAM_FILES)
    assert spec.weights_sha256 == weights_sha256(tmp_path / "m")  # the n-gram files are part of the hash
    card = json.loads((tmp_path / "m" / CARD_JSON).read_text(encoding="utf-8"))
    assert card["network_only_metrics"]["valid"]["sentiment"]["n"] == 12
    assert card["validation_metrics"] == result.metrics
    engine = InferenceEngine(tmp_path / "m", "torch")
    probs = engine.probabilities([r["text"] for r in rows])
    accuracy = np.mean([SENTIMENTS[i] == r["label"] for i, r in zip(probs[1].argmax(1), rows, strict=True)])
    assert accuracy == result.metrics["sentiment"]["accuracy"]  # the engine averages exactly as training scored
    (tmp_path / "m" / NGRAM_FILES[1]).unlink()
    with pytest.raises(ModelError, match="incomplete, missing ngram.safetensors"):
        InferenceEngine(tmp_path / "m").load()


@pytest.mark.slow
def test_ngram_command_adds_the_ngram_half_to_a_trained_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from finsentinel.cli import main
    from tests.tiny_model import make_tiny_model_dir

    model = make_tiny_model_dir(tmp_path / "m")
    before = load_model(model).spec
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in tiny_rows()), encoding="utf-8")
    assert main(["ngram", "--model", str(model), "--train", str(data), "--valid", str(data), "--weight", "0.3",
                 "--analysers", "char"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["network"]["sentiment"]["n"] == 12 and out["ensemble"]["topic"]["n"] == 12
    after = load_model(model).spec
    assert after.ngram_weight == 0.3 and after.weights_sha256 != before.weights_sha256
    card = json.loads((model / CARD_JSON).read_text(encoding="utf-8"))
    assert card["ngram"]["weight"] == 0.3
    assert card["validation_metrics"]["sentiment"]["accuracy"] == out["ensemble"]["sentiment"]["accuracy"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "x", "topic": "Crypto"}) + "\n", encoding="utf-8")
    assert main(["ngram", "--model", str(model), "--train", str(bad)]) == 2
    assert "are not topics of the model" in capsys.readouterr().err
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"text": "违规", "topics": ["交易违规"]}, ensure_ascii=False) + "\n", "utf-8")
    assert main(["ngram", "--model", str(model), "--train", str(data), "--events", str(events)]) == 2
    assert "has no event head; train it with --events" in capsys.readouterr().err
