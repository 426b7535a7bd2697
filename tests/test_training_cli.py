"""`finsentinel train → evaluate → export → predict` and `bench classify` on a tiny model, in-process.

The files use the layout of ../shared/data (sentiment-only and topic-only files, TFNS label names
translated with --label-map, FinESE-style event files); a second run trains from a tiny
Chinese-vocabulary BERT named in the settings, with the same commands unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from finsentinel.cli import main
from nlp.engine import InferenceEngine
from nlp.model import CARD_JSON, load_model
from nlp.onnx_backend import EXPORT_JSON, INT8_FILE, ONNX_DIR
from tests.tiny_model import make_tiny_base_dir, make_tiny_model_dir, tiny_rows

TFNS_NAMES = {"negative": "Bearish", "positive": "Bullish", "neutral": "Neutral"}
LABEL_MAP = "Bearish=negative,Bullish=positive,Neutral=neutral"
EVENT_TYPES = ("其他", "信批违规", "交易违规 信批违规")
FAST = ("--epochs", "2", "--batch-size", "4", "--lr", "1e-3", "--max-length", "24", "--seed", "3")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    rows = tiny_rows()
    return {
        "sentiment": write_jsonl(
            root / "sentiment.jsonl",
            [{"text": r["text"], "label": TFNS_NAMES[r["label"]], "lang": r["lang"]} for r in rows],
        ),
        "topic": write_jsonl(root / "topic.jsonl", [{"text": r["text"], "topic": r["topic"]} for r in rows]),
        "events": write_jsonl(
            root / "events.jsonl",
            [{"text": r["text"], "topic": EVENT_TYPES[i % 3], "lang": r["lang"]} for i, r in enumerate(rows)],
        ),
        "base": make_tiny_base_dir(root / "base"),
    }


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code = main(list(argv))
    out = capsys.readouterr().out
    assert code == 0, out
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_train_evaluate_export_predict(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model"
    trained = run_json(
        capsys, "train", "--train", str(files["sentiment"]), str(files["topic"]),
        "--valid", str(files["sentiment"]), str(files["topic"]),
        "--events", str(files["events"]), "--valid-events", str(files["events"]),
        "--label-map", LABEL_MAP, "--base-model", str(files["base"]), "--out", str(model), *FAST,
    )
    assert trained["version"].startswith("model@") and trained["steps"] == 2 * 9  # 36 rows / batch 4
    assert trained["validation"]["sentiment"]["n"] == 12 and trained["validation"]["events"]["n"] == 12
    card = json.loads((model / CARD_JSON).read_text(encoding="utf-8"))
    assert [f["role"] for f in card["data"]["files"]] == ["train", "train", "valid", "valid", "events", "valid-events"]
    assert card["data"]["label_map"]["Bearish"] == "negative" and len(card["training"]["history"]) == 2
    assert load_model(model).spec.events == ("交易违规", "信批违规", "其他")

    report = run_json(capsys, "evaluate", "--model", str(model), "--data", str(files["sentiment"]),
                      "--task", "sentiment", "--label-map", LABEL_MAP, "--json")
    assert report["n"] == 12 and report["backend"] == "torch"
    assert {"accuracy", "macro_f1", "weighted_f1", "per_class", "confusion"} <= set(report)
    assert sum(map(sum, report["confusion"])) == 12 and report["labels"] == ["negative", "neutral", "positive"]
    assert report["accuracy"] == trained["validation"]["sentiment"]["accuracy"]  # same rows, same model
    topic = run_json(capsys, "evaluate", "--model", str(model), "--data", str(files["topic"]), "--task", "topic", "--json")
    assert topic["n"] == 12 and set(topic["per_class"]) == {"Earnings", "Legal | Regulation", "Stock Movement"}
    events = run_json(capsys, "evaluate", "--model", str(model), "--data", str(files["events"]), "--task", "events",
                      "--json")
    assert main(["evaluate", "--model", str(model), "--data", str(files["topic"]), "--task", "topic"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("topic on 12 rows") and "weighted-F1" in table and "Stock Movement" in table
    assert events["n"] == 12 and 0 <= events["micro_f1"] <= 1 and "信批违规" in events["per_class"]

    assert main(["export", "--model", str(model)]) == 0  # default sample: the bundled probe headlines
    assert "int8 agreement" in capsys.readouterr().out
    exported = run_json(capsys, "export", "--model", str(model), "--sample", str(files["topic"]), "--json")
    assert exported["check"]["accepted"] and exported["versions"]["onnxruntime"]
    assert (model / ONNX_DIR / INT8_FILE).is_file() and (model / ONNX_DIR / EXPORT_JSON).is_file()
    int8 = run_json(capsys, "evaluate", "--model", str(model), "--data", str(files["sentiment"]),
                    "--task", "sentiment", "--label-map", LABEL_MAP, "--backend", "onnx-int8", "--json")
    assert int8["backend"] == "onnx-int8" and int8["n"] == 12

    out = tmp_path / "pred.jsonl"
    summary = run_json(capsys, "predict", "--model", str(model), "--input", str(files["sentiment"]),
                       "--output", str(out), "--backend", "onnx-int8")
    assert summary["rows"] == 12
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == [r["text"] for r in tiny_rows()]
    assert rows[0]["label"] == "Bearish"  # the input fields are kept
    pred = rows[0]["prediction"]
    assert pred["sentiment"] in ("negative", "neutral", "positive") and pred["events"]
    assert pred["topic"] in topic["per_class"] and rows[0]["model_version"] == trained["version"]

    bench = run_json(capsys, "bench", "classify", "--model", str(model), "--data", str(files["sentiment"]),
                     "--batch-size", "4", "--repeat", "1", "--json")
    assert bench["backend"] == "onnx-int8" and bench["n"] == 12 and bench["batches"] >= 3
    assert bench["docs_per_s"] > 0 and bench["bare_docs_per_s"] > 0 and bench["p99_ms"] >= bench["p50_ms"] > 0
    assert bench["ratio"] == pytest.approx(bench["docs_per_s"] / bench["bare_docs_per_s"], rel=0.01)
    assert bench["stream_docs_per_s"] > 0 and bench["stream_ratio"] > 0


@pytest.mark.slow
def test_chinese_checkpoint_in_settings_works_unchanged(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = make_tiny_base_dir(tmp_path / "zh-base", chinese_vocab=True, seed=4)
    monkeypatch.setenv("FINSENTINEL_NLP__BASE_MODEL", str(base))
    model = tmp_path / "zh"
    trained = run_json(capsys, "train", "--train", str(files["sentiment"]), str(files["topic"]),
                       "--label-map", LABEL_MAP, "--out", str(model), *FAST)
    assert trained["added_tokens"] == 0  # the vocabulary already covers the Chinese texts
    assert json.loads((model / CARD_JSON).read_text(encoding="utf-8"))["base_model"]["name"] == str(base)
    run_json(capsys, "export", "--model", str(model), "--sample", str(files["topic"]), "--json")
    report = run_json(capsys, "evaluate", "--model", str(model), "--data", str(files["topic"]), "--task", "topic",
                      "--backend", "onnx", "--json")
    assert report["n"] == 12


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--label-map", "Bearish=down"], "targets must be one of"),
        (["--label-map", "Bearish"], "expected FROM=TO pairs"),
        ([], "'Bearish' is not one of"),
    ],
)
def test_bad_labels_are_one_line_errors(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code = main(["train", "--train", str(files["sentiment"]), str(files["topic"]), "--base-model", str(files["base"]),
                 "--out", str(tmp_path / "m"), *argv])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(("flag", "field"), [("--layer-lr-decay", "layer_lr_decay"),
                                             ("--label-smoothing", "label_smoothing")])
def test_training_flags_reach_the_checked_arguments(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, field: str
) -> None:
    code = main(["train", "--train", str(files["sentiment"]), "--base-model", str(files["base"]),
                 "--label-map", LABEL_MAP, "--out", str(tmp_path / "m"), flag, "2"])
    assert code == 2 and f"{field}: expected" in capsys.readouterr().err


def test_taxonomy_setting_checks_training_topics(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "f.yaml"
    cfg.write_text("nlp:\n  taxonomy:\n    en: [Earnings, Macro]\n", encoding="utf-8")
    code = main(["-c", str(cfg), "train", "--train", str(files["sentiment"]), str(files["topic"]), "--lang", "en",
                 "--label-map", LABEL_MAP, "--base-model", str(files["base"]), "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2 and "nlp.taxonomy.en" in err and "missing ['Macro']" in err


@pytest.mark.slow
def test_partial_labels_train_validate_evaluate_and_ngram(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """FinNSP-style rows (negative / not_negative) with not_negative as a partial label, end to end."""
    nsp = write_jsonl(tmp_path / "nsp.jsonl", [
        {"text": r["text"], "label": "negative" if r["label"] == "negative" else "not_negative"} for r in tiny_rows()
    ])
    full = sum(r["label"] == "negative" for r in tiny_rows())
    model, label_map = tmp_path / "m", f"{LABEL_MAP},not_negative=neutral|positive"
    trained = run_json(capsys, "train", "--train", str(nsp), str(files["topic"]), "--valid", str(nsp),
                       "--label-map", label_map, "--base-model", str(files["base"]), "--out", str(model), *FAST)
    assert trained["validation"]["sentiment"]["n"] == full  # partial labels are not scored
    card = json.loads((model / CARD_JSON).read_text(encoding="utf-8"))
    assert card["data"]["label_map"]["not_negative"] == "neutral|positive"
    report = run_json(capsys, "evaluate", "--model", str(model), "--data", str(nsp), "--task", "sentiment",
                      "--label-map", label_map, "--json")
    assert report["n"] == full and report["labels"] == ["negative", "neutral", "positive"]
    partial = report["partial"]  # the not-negative rows: right when predicted neutral or positive
    predictions = run_json(capsys, "predict", "--model", str(model), "--input", str(nsp), "--output",
                           str(tmp_path / "p.jsonl"))
    assert predictions["rows"] == len(tiny_rows())
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()]
    inside = [r["prediction"]["sentiment"] != "negative" for r in rows if r["label"] == "not_negative"]
    assert partial["n"] == len(inside) == len(tiny_rows()) - full
    assert partial["accuracy"] == round(sum(inside) / len(inside), 4)
    assert partial["per_set"] == {"neutral|positive": {"n": partial["n"], "accuracy": partial["accuracy"]}}
    assert main(["evaluate", "--model", str(model), "--data", str(nsp), "--task", "sentiment",
                 "--label-map", label_map]) == 0
    assert f"partial label neutral|positive: {partial['accuracy']:.4f} of {partial['n']} rows" in capsys.readouterr().out
    ngram = ["ngram", "--model", str(model), "--train", str(nsp), str(files["topic"]), "--label-map", label_map,
             "--analysers", "char"]
    assert main(ngram) == 2  # the n-gram half learns from full labels only: here all negative
    assert "sentiment head needs rows of at least two classes, got ['negative']" in capsys.readouterr().err
    assert main([*ngram, "--train", str(files["sentiment"]), str(nsp), str(files["topic"])]) == 0
    ngram_card = json.loads((model / CARD_JSON).read_text(encoding="utf-8"))["ngram"]
    assert ngram_card["weight"] == 0.5 and "sentiment" in ngram_card["heads"]


def test_evaluate_needs_labels_for_the_task(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["evaluate", "--model", str(files["base"]), "--data", str(files["topic"]), "--task", "sentiment"])
    assert code == 2 and "no rows carry a 'label'" in capsys.readouterr().err


def test_progress_bar_follows_the_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    from training import cli

    monkeypatch.setattr(cli.sys.stderr, "isatty", lambda: True, raising=False)
    bar = cli._progress_bar()
    assert bar is not None
    bar(3, 10)
    bar(7, 10)
    assert bar.bar.n == 7 and bar.bar.total == 10
    bar.close()
    monkeypatch.setattr(cli.sys.stderr, "isatty", lambda: False, raising=False)
    assert cli._progress_bar() is None


@pytest.mark.slow
def test_pretrain_then_train_from_the_pretrained_base(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [{"text": "金融新闻语料：央行宣布降准，市场流动性改善。" * 3}] * 8)
    base = tmp_path / "pretrained"
    summary = run_json(capsys, "pretrain", "--corpus", str(corpus), "--out", str(base), "--base-model",
                       str(files["base"]), "--batch-size", "4", "--max-length", "32")
    assert summary["added_tokens"] > 5 and summary["steps"] >= 2 and (base / "model.safetensors").is_file()
    trained = run_json(capsys, "train", "--train", str(files["sentiment"]), str(files["topic"]), "--label-map",
                       LABEL_MAP, "--base-model", str(base), "--out", str(tmp_path / "m"), *FAST)
    assert trained["version"].startswith("m@")


def test_evaluate_scores_several_models_as_the_mean_of_their_probabilities(
    tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = make_tiny_model_dir(tmp_path / "a"), make_tiny_model_dir(tmp_path / "b", with_chinese=False)
    topics = load_model(a).spec.topics
    # a says topics[0], b says topics[2], their mean topics[1] for every text
    fixed = {a: [0.5, 0.4, 0.1], b: [0.1, 0.4, 0.5]}

    def probabilities(self: InferenceEngine, texts: list[str]) -> tuple[np.ndarray, ...]:
        topic = np.tile(np.array(fixed[self.model_dir], dtype=np.float32), (len(texts), 1))
        return topic, np.full((len(texts), 3), 1 / 3, dtype=np.float32)

    monkeypatch.setattr(InferenceEngine, "network_probabilities", probabilities)  # the tiny models have no n-gram half
    argv = ["evaluate", "--data", str(files["topic"]), "--task", "topic", "--json"]
    report = run_json(capsys, *argv[:1], "--model", str(a), str(b), *argv[1:])
    versions = [f"tiny-test@{load_model(m).spec.weights_sha256[:12]}" for m in (a, b)]
    assert report["model"] == " + ".join(versions) and report["n"] == 12
    n_middle = sum(1 for row in tiny_rows() if row["topic"] == topics[1])
    assert report["accuracy"] == round(n_middle / 12, 4)
    assert [sum(col) for col in zip(*report["confusion"], strict=True)] == [0, 12, 0]  # every prediction topics[1]
    single = run_json(capsys, *argv[:1], "--model", str(a), *argv[1:])
    assert single["model"] == versions[0] and [sum(c) for c in zip(*single["confusion"], strict=True)] == [12, 0, 0]
    other = make_tiny_model_dir(tmp_path / "c", topics=("Earnings", "Macro"))
    assert main([*argv[:1], "--model", str(a), str(other), *argv[1:]]) == 2
    assert "have different topics" in capsys.readouterr().err


def test_predict_reads_a_jsonl_with_a_byte_order_mark(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Windows editors save UTF-8 with a BOM; `train` reads such files, so `predict` must too."""
    from tests.tiny_model import make_tiny_model_dir

    model = make_tiny_model_dir(tmp_path / "model")
    data = tmp_path / "bom.jsonl"
    data.write_bytes(b"\xef\xbb\xbf" + '{"text": "极光汽车股价大涨"}\n{"text": "Profit falls"}\n'.encode())
    out = tmp_path / "out.jsonl"
    summary = run_json(capsys, "predict", "--model", str(model), "--input", str(data), "--output", str(out))
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert summary["rows"] == 2 and [r["text"] for r in rows] == ["极光汽车股价大涨", "Profit falls"]


def test_predict_names_an_input_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "gbk.jsonl"
    data.write_bytes('{"text": "极光汽车股价大涨"}\n'.encode("gbk"))
    code = main(["predict", "--model", str(tmp_path / "none"), "--input", str(data), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and str(data) in err and "UTF-8" in err


def test_predict_names_the_line_that_is_not_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"text": "a"}\n\n{"text": "b"}\n{"text": oops}\n', encoding="utf-8")
    code = main(["predict", "--model", str(tmp_path / "none"), "--input", str(data), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and f"{data} line 4: not valid JSON" in err
