"""Ensemble directories: written by `finsentinel ensemble`, served, evaluated, exported and benchmarked as one model.

Two tiny models trained on different rows have different weights; the ensemble's probabilities
must be exactly the mean of theirs, and every command that takes ``--model`` must accept it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from finsentinel.cli import main
from finsentinel.errors import ModelError
from finsentinel.settings import NlpSettings
from nlp.engine import InferenceEngine
from nlp.ensemble import ENSEMBLE_FILE, EnsembleEngine, open_engine, read_ensemble
from nlp.model import CARD_JSON, CARD_MD, load_model
from nlp.onnx_backend import INT8_FILE, ONNX_DIR
from nlp.serving import build_router, routes
from tests.test_training_cli import LABEL_MAP, run_json, write_jsonl
from tests.tiny_model import make_tiny_model_dir, tiny_rows

TEXTS = [r["text"] for r in tiny_rows()]


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("members")
    return make_tiny_model_dir(root / "a"), make_tiny_model_dir(root / "b", with_chinese=False)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("valid")
    names = {"negative": "Bearish", "positive": "Bullish", "neutral": "Neutral"}
    return write_jsonl(root / "valid.jsonl", [{**r, "label": names[r["label"]]} for r in tiny_rows()])


def make_ensemble(capsys: pytest.CaptureFixture[str], out: Path, members: tuple[Path, Path], *extra: str) -> dict:
    return run_json(capsys, "ensemble", "--out", str(out), "--members", *map(str, members), *extra)


def test_the_ensemble_is_the_mean_of_its_members(
    tmp_path: Path, members: tuple[Path, Path], labelled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "models" / "zh-ensemble"
    summary = make_ensemble(capsys, out, members, "--valid", str(labelled), "--label-map", LABEL_MAP)
    versions = [f"tiny-test@{load_model(m).spec.weights_sha256[:12]}" for m in members]
    assert summary["members"] == versions and summary["metrics"]["sentiment"]["n"] == 12
    spec = read_ensemble(out)
    assert [(out / m).resolve() for m in spec.members] == [m.resolve() for m in members]
    assert not any(Path(m).is_absolute() for m in spec.members)  # the models folder can move as a whole
    card = json.loads((out / CARD_JSON).read_text(encoding="utf-8"))
    assert [m["version"] for m in card["members"]] == versions and card["members"][0]["training_args"]["seed"] == 1
    assert card["validation_metrics"]["topic"]["n"] == 12 and "(ensemble)" in (out / CARD_MD).read_text("utf-8")

    engine = open_engine(out)
    assert isinstance(engine, EnsembleEngine)
    mean = [np.mean(parts, axis=0) for parts in zip(*(InferenceEngine(m).probabilities(TEXTS) for m in members),
                                                     strict=True)]
    got = engine.probabilities(TEXTS)
    assert len(got) == 2 and all(np.allclose(g, m, atol=1e-6) for g, m in zip(got, mean, strict=True))
    assert not np.allclose(InferenceEngine(members[0]).probabilities(TEXTS)[0], mean[0], atol=1e-4)
    assert engine.version.startswith("zh-ensemble@") and engine.member_versions == versions
    predictions = engine.submit(TEXTS[:3]).result(timeout=30)  # the dynamic batcher serves it too
    engine.close()
    assert [p.topic for p in predictions] == [p.topic for p in engine.classify(TEXTS[:3])]

    report = run_json(capsys, "evaluate", "--model", str(out), "--data", str(labelled), "--task", "sentiment",
                      "--label-map", LABEL_MAP, "--json")
    assert report["model"] == engine.version and report["members"] == versions
    assert report["accuracy"] == summary["metrics"]["sentiment"]["accuracy"]


def test_export_predict_and_bench_take_an_ensemble(
    tmp_path: Path, members: tuple[Path, Path], labelled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copies = tuple(Path(shutil.copytree(m, tmp_path / m.name)) for m in members)
    out = tmp_path / "ens"
    make_ensemble(capsys, out, copies)  # type: ignore[arg-type]
    exported = run_json(capsys, "export", "--model", str(out), "--sample", str(labelled), "--json")
    assert len(exported["members"]) == 2 and all(r["check"]["accepted"] for r in exported["members"])
    assert all((m / ONNX_DIR / INT8_FILE).is_file() for m in copies)
    predicted = tmp_path / "pred.jsonl"
    summary = run_json(capsys, "predict", "--model", str(out), "--input", str(labelled), "--output",
                       str(predicted), "--backend", "onnx-int8")
    rows = [json.loads(line) for line in predicted.read_text(encoding="utf-8").splitlines()]
    assert summary["rows"] == 12 and {r["model_version"] for r in rows} == {summary["model"]}
    assert summary["model"].startswith("ens@")
    bench = run_json(capsys, "bench", "classify", "--model", str(out), "--data", str(labelled),
                     "--batch-size", "4", "--repeat", "1", "--json")
    assert bench["networks"] == 2 and bench["backend"] == "onnx-int8" and bench["n"] == 12
    assert bench["docs_per_s"] > 0 and bench["bare_docs_per_s"] > 0 and bench["batches"] >= 3


def test_serving_routes_to_an_ensemble_reference_model(
    tmp_path: Path, members: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    make_ensemble(capsys, tmp_path / "models" / "finsentinel-zh", members)
    settings = NlpSettings(model_dir=members[0])
    assert routes(settings, tmp_path) == {"zh": tmp_path / "models" / "finsentinel-zh"}
    router = build_router(settings.model_copy(update={"models": {"zh": tmp_path / "models" / "finsentinel-zh"}}))
    router.load()
    assert isinstance(router.route("zh").classifier, EnsembleEngine)
    assert not isinstance(router.route("en").classifier, EnsembleEngine)


def test_a_changed_member_or_a_broken_file_is_refused_with_the_fix(
    tmp_path: Path, members: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    copies = tuple(Path(shutil.copytree(m, tmp_path / m.name)) for m in members)
    out = tmp_path / "ens"
    make_ensemble(capsys, out, copies)  # type: ignore[arg-type]
    shutil.rmtree(copies[1])
    make_tiny_model_dir(copies[1])  # retrained in place on other rows: other weights
    with pytest.raises(ModelError, match="other weights than when it was written"):
        open_engine(out).load()
    (out / ENSEMBLE_FILE).write_text('{"format": "something-else"}', encoding="utf-8")
    with pytest.raises(ModelError, match="expected format 'finsentinel-ensemble'"):
        open_engine(out).load()
    (out / ENSEMBLE_FILE).write_text('{"format": "finsentinel-ensemble", "format_version": 1, "members": ["a"], '
                                     '"versions": ["x"]}', encoding="utf-8")
    with pytest.raises(ModelError, match="at least two member paths"):
        open_engine(out).load()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("one member", "at least two --members"),
        ("into a member", "choose another --out"),
        ("other topics", "have different topics"),
        ("nested", "is itself an ensemble"),
        ("missing member", "does not exist"),
    ],
)
def test_bad_ensembles_are_not_written(
    case: str, message: str, tmp_path: Path, members: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = map(str, members)
    nested = tmp_path / "inner"
    if case == "nested":
        make_ensemble(capsys, nested, members)
    argv = {
        "one member": [a],
        "into a member": [a, b],
        "other topics": [a, str(make_tiny_model_dir(tmp_path / "c", topics=("Earnings", "Macro")))],
        "nested": [a, str(nested)],
        "missing member": [a, str(tmp_path / "nowhere")],
    }[case]
    out = members[0] if case == "into a member" else tmp_path / "out"
    assert main(["ensemble", "--out", str(out), "--members", *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / ENSEMBLE_FILE).exists()


def test_single_model_steps_say_how_to_use_an_ensemble(
    tmp_path: Path, members: tuple[Path, Path], labelled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ens"
    make_ensemble(capsys, out, members)
    assert main(["ngram", "--model", str(out), "--train", str(labelled), "--label-map", LABEL_MAP]) == 2
    assert "run it on each member listed there" in capsys.readouterr().err
    with pytest.raises(ModelError, match="is an ensemble of model directories"):
        load_model(out)


def test_members_with_the_same_ngram_half_share_it_and_compute_it_once(
    tmp_path: Path, members: tuple[Path, Path], labelled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nlp.ngram import NgramModel, ngram_digest

    a, b, c = (shutil.copytree(m, tmp_path / name) for m, name in zip((*members, members[0]), "abc", strict=True))
    rows = tmp_path / "fewer.jsonl"
    rows.write_text("".join(labelled.read_text(encoding="utf-8").splitlines(keepends=True)[:8]), encoding="utf-8")
    for model, data in ((a, labelled), (b, labelled), (c, rows)):  # a and b: one half, fitted alike; c: its own
        assert main(["ngram", "--model", str(model), "--train", str(data), "--label-map", LABEL_MAP,
                     "--analysers", "char"]) == 0
    assert ngram_digest(a) == ngram_digest(b) != ngram_digest(c)
    engine = EnsembleEngine(None, members=[a, b, c]).load()
    first, second, third = (m.ngram for m in engine.members)
    assert first is second and third is not first

    calls: list[int] = []
    own = NgramModel.probabilities
    monkeypatch.setattr(NgramModel, "probabilities", lambda self, texts: calls.append(1) or own(self, texts))
    got = engine.probabilities(TEXTS)
    assert len(calls) == 2  # the shared half once, c's once
    alone = [InferenceEngine(m).probabilities(TEXTS) for m in (a, b, c)]
    assert all(np.allclose(g, np.mean(parts, axis=0), atol=1e-6)
               for g, parts in zip(got, zip(*alone, strict=True), strict=True))
    assert not np.allclose(got[1], np.mean([x.network_probabilities(TEXTS)[1] for x in engine.members], axis=0))
