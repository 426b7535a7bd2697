"""Labels: checked against the model's topics, stored in the index, exported as a training file."""

from __future__ import annotations

import getpass
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from alerting.index.sqlite import SqliteIndex
from alerting.labels import export, make_label
from finsentinel.cli import main
from finsentinel.errors import ConfigError, SchemaError
from finsentinel.schema import Label, ScoredItem
from nlp.model import CARD_JSON
from tests.contract.index import T0, scored
from tests.tiny_model import make_tiny_base_dir, tiny_rows
from training.data import read_rows

TOPICS = {"autos": 0.7, "energy": 0.2, "markets": 0.1}


def _item(n: int = 1, lang: str = "en", title: str = "Aurora recalls 48,000 SUVs") -> ScoredItem:
    return scored(n, title, body="Battery fire risk.", lang=lang, topic="autos",
                  sentiment="neutral").model_copy(update={"topic_scores": TOPICS})


def test_a_label_keeps_the_text_as_classified_and_what_the_model_said() -> None:
    label = make_label(_item(), "negative", "energy", "ana", "recall", {}, T0)
    assert (label.item_id, label.text, label.lang) == ("item-000001", "Aurora recalls 48,000 SUVs\nBattery fire risk.",
                                                       "en")
    assert (label.sentiment, label.topic, label.predicted_sentiment, label.predicted_topic) == (
        "negative", "energy", "neutral", "autos")


def test_a_topic_must_be_one_the_model_or_the_taxonomy_knows() -> None:
    with pytest.raises(ConfigError, match=r"topic 'recall' is not a topic of the model .* \['autos', 'energy'"):
        make_label(_item(), None, "recall", "ana", "", {}, T0)
    zh = _item(lang="zh", title="极光汽车召回")
    assert make_label(zh, None, "召回", "ana", "", {"zh": ["召回", "财报"]}, T0).topic == "召回"
    with pytest.raises(ConfigError, match=r"nlp.taxonomy.zh: expected one of \['召回', '财报'\]"):
        make_label(zh, None, "autos", "ana", "", {"zh": ["召回", "财报"]}, T0)


def test_a_label_says_something() -> None:
    with pytest.raises(ConfigError, match="needs --sentiment, --topic, or both"):
        make_label(_item(), None, None, "ana", "", {}, T0)
    with pytest.raises(SchemaError, match="a label needs a sentiment, a topic, or both"):
        Label.from_json(json.dumps({"item_id": "item-000001", "text": "x", "lang": "en", "by": "ana",
                                    "created_at": T0.isoformat()}))


def test_the_export_is_a_training_file_oldest_first(tmp_path: Path) -> None:
    labels = [make_label(_item(2, title="Aurora names CFO"), None, "markets", "bo", "", {}, T0 + timedelta(minutes=1)),
              make_label(_item(1), "negative", None, "ana", "", {}, T0),
              make_label(_item(3, title="Grid output steady"), "neutral", None, "ana", "", {}, T0)]
    out = tmp_path / "labels" / "labels.jsonl"
    assert export(labels, out) == {"labels": 3, "sentiment": 2, "topic": 1, "corrections": 2}
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["item-000001", "item-000003", "item-000002"]
    assert rows[0] | {"created_at": None} == {
        "text": "Aurora recalls 48,000 SUVs\nBattery fire risk.", "lang": "en", "label": "negative", "topic": "",
        "id": "item-000001", "by": "ana", "created_at": None, "predicted_label": "neutral", "predicted_topic": "autos"}
    assert [(r.get("label"), r.get("topic")) for r in read_rows(out)] == [
        ("negative", None), ("neutral", None), (None, "markets")]
    assert [p.name for p in out.parent.iterdir()] == ["labels.jsonl"]  # no temporary file left
    assert out.stat().st_mode & 0o777 == 0o644  # a training file for others to read, not mkstemp's 0600


def test_an_export_past_the_readers_first_chunk_still_trains(tmp_path: Path) -> None:
    """The JSON reader takes its columns from the file's first 10 MB: a desk that labelled sentiments
    for weeks before it labelled a topic must still get a file ``finsentinel train`` reads."""
    body = "Aurora Motors recalls SUVs over a battery fire risk. " * 25
    labels = [Label(item_id=f"item-{n:06d}", text=f"{n} {body}", lang="en", sentiment="negative", by="ana",
                    predicted_sentiment="neutral", predicted_topic="autos", created_at=T0 + timedelta(seconds=n))
              for n in range(8000)]
    labels.append(Label(item_id="item-topic1", text="Grid outage", lang="en", topic="energy", by="bo",
                        predicted_sentiment="neutral", predicted_topic="autos", created_at=T0 + timedelta(days=1)))
    out = tmp_path / "labels.jsonl"
    assert export(labels, out)["topic"] == 1
    assert out.stat().st_size > 10 << 20
    rows = read_rows(out)
    assert len(rows) == 8001 and rows[-1] == {"text": "Grid outage", "lang": "en", "topic": "energy"}
    assert "topic" not in rows[0]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("FINSENTINEL_CONFIG", "FINSENTINEL_ALERTING__INDEX__BACKEND", "FINSENTINEL_ALERTING__INDEX__PATH"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "finsentinel.yaml").write_text("alerting:\n  index:\n    path: index.sqlite3\n", encoding="utf-8")
    index = SqliteIndex(tmp_path / "index.sqlite3")
    index.upsert([_item(1), _item(2, lang="zh", title="极光汽车召回")])
    index.close()
    return tmp_path


def test_label_then_export_from_the_command_line(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["label", "item-000001", "--sentiment", "negative", "--by", "ana", "--note", "a recall"]) == 0
    assert capsys.readouterr().out == ("labelled item-000001: sentiment negative (model: neutral), "
                                       "topic - (model: autos), by ana\n")
    assert main(["label", "item-000002", "--topic", "energy", "--by", "bo"]) == 0
    assert main(["label", "item-000001", "--sentiment", "positive", "--by", "cy"]) == 0  # replaces ana's
    capsys.readouterr()
    assert main(["label", "item-000002", "--sentiment", "negative", "--by", "  "]) == 0  # a blank --by: the login
    assert capsys.readouterr().out.endswith(f"by {getpass.getuser()}; topic kept from bo's label\n")
    assert main(["label", "item-000002", "--topic", "energy", "--by", "dee"]) == 0  # keeps that sentiment
    capsys.readouterr()
    assert main(["labels", "export", "--out", "labels.jsonl"]) == 0
    assert json.loads(capsys.readouterr().out) == {"out": "labels.jsonl", "labels": 2, "sentiment": 2, "topic": 1,
                                                   "corrections": 2}
    assert [(r["text"], r.get("label"), r.get("topic")) for r in read_rows(workdir / "labels.jsonl")] == [
        ("Aurora recalls 48,000 SUVs\nBattery fire risk.", "positive", None),
        ("极光汽车召回\nBattery fire risk.", "negative", "energy")]  # bo's topic, then a sentiment, both kept
    before = (workdir / "labels.jsonl").read_bytes()
    assert main(["labels", "export", "--out", "labels.jsonl", "--since", "2999-01-01"]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == 0
    assert (workdir / "labels.jsonl").read_bytes() == before  # no labels: the earlier export is left alone


@pytest.mark.parametrize(("argv", "message"), [
    (["label", "item-999999", "--sentiment", "negative", "--by", "ana"], "no item 'item-999999' in the index"),
    (["label", "item-000001", "--by", "ana"], "a label needs --sentiment, --topic, or both"),
    (["label", "item-000001", "--topic", "recall", "--by", "ana"], "topic 'recall' is not a topic"),
    (["labels", "export", "--out", "x.jsonl", "--since", "last week"], "--since: expected an ISO 8601"),
    (["labels", "export", "--out", "."], "cannot write the labels to ."),  # a directory
    (["labels", "export", "--out", "index.sqlite3/labels.jsonl"], "cannot write the labels to index.sqlite3/labels"),
])
def test_bad_labels_are_one_line_errors(workdir: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                        message: str) -> None:
    assert main(["label", "item-000001", "--sentiment", "negative", "--by", "ana"]) == 0  # one to export
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["label", "item-000001", "--sentiment", "negative", "--by", "ana"],
                                  ["labels", "export", "--out", "labels.jsonl"]])
def test_a_missing_sqlite_index_is_named_not_made(workdir: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    """A wrong alerting.index.path says so, rather than 'no item' or an empty export from a new empty index."""
    monkeypatch.setenv("FINSENTINEL_ALERTING__INDEX__PATH", "elsewhere/index.sqlite3")
    assert main(argv) == 2
    assert "no sqlite index at elsewhere/index.sqlite3" in capsys.readouterr().err
    assert not (workdir / "elsewhere").exists() and not (workdir / "labels.jsonl").exists()
    monkeypatch.setenv("FINSENTINEL_ALERTING__INDEX__PATH", "bus.sqlite3")  # another database of the deployment
    sqlite3.connect(workdir / "bus.sqlite3").execute("CREATE TABLE records (id INTEGER)").connection.close()
    assert main(argv) == 2
    assert "bus.sqlite3 is not a FinSentinel index" in capsys.readouterr().err
    assert sqlite3.connect(workdir / "bus.sqlite3").execute("SELECT name FROM sqlite_master").fetchall() == [
        ("records",)]  # no index tables added to it


@pytest.mark.slow
def test_exported_labels_train_a_model(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The loop a desk runs: items indexed, people label them, the export trains the next model."""
    rows = tiny_rows()
    topics = {r["topic"]: 1.0 / len(rows) for r in rows}
    index = SqliteIndex(workdir / "index.sqlite3")
    index.upsert([scored(10 + n, r["text"], lang=r["lang"]).model_copy(update={"topic_scores": topics})
                  for n, r in enumerate(rows)])
    index.close()
    for n, r in enumerate(rows):
        assert main(["label", f"item-{10 + n:06d}", "--sentiment", r["label"], "--topic", r["topic"], "--by", "ana"]) == 0
    assert main(["labels", "export", "--out", "labels.jsonl"]) == 0
    capsys.readouterr()
    base = make_tiny_base_dir(workdir / "base")
    assert main(["train", "--train", "labels.jsonl", "--base-model", str(base), "--out", "model",
                 "--epochs", "1", "--batch-size", "4", "--max-length", "24", "--seed", "3"]) == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert trained["steps"] == 3  # 12 labelled rows, batches of 4
    card = json.loads((workdir / "model" / CARD_JSON).read_text(encoding="utf-8"))
    assert [f["role"] for f in card["data"]["files"]] == ["train"]
