"""Weight soups: `finsentinel soup` averages the weights of models from one base into one model directory.

Two tiny models trained from the same tiny base with different seeds differ in every head weight;
the soup's tensors must be exactly their mean, it must load, classify and carry a card, and models
that cannot be averaged (another vocabulary, different n-gram halves, too few) must be refused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from finsentinel.cli import main
from nlp.engine import InferenceEngine
from nlp.model import CARD_JSON, CARD_MD, NGRAM_FILES, load_model
from tests.test_training_cli import LABEL_MAP, run_json, write_jsonl
from tests.tiny_model import make_tiny_model_dir, tiny_rows


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("members")
    return make_tiny_model_dir(root / "a", seed=1), make_tiny_model_dir(root / "c", seed=2)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    names = {"negative": "Bearish", "positive": "Bullish", "neutral": "Neutral"}
    rows = [{**r, "label": names[r["label"]]} for r in tiny_rows()]
    return write_jsonl(tmp_path_factory.mktemp("valid") / "valid.jsonl", rows)


def soup(*argv: str) -> int:
    return main(["soup", *argv])


def test_the_soup_is_the_mean_of_its_members_weights(
    tmp_path: Path, members: tuple[Path, Path], labelled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "models" / "soup"
    summary = run_json(capsys, "soup", "--out", str(out), "--members", *map(str, members),
                       "--valid", str(labelled), "--label-map", LABEL_MAP)
    a, c, mixed = load_model(members[0]), load_model(members[1]), load_model(out)
    assert summary["members"] == [a.version, c.version] and summary["metrics"]["sentiment"]["n"] == 12
    heads = {k: v for k, v in a.model.state_dict().items() if "_head" in k}
    assert any(not torch.equal(v, c.model.state_dict()[k]) for k, v in heads.items())  # the seeds differ
    for key, weight in mixed.model.state_dict().items():
        want = (a.model.state_dict()[key].float() + c.model.state_dict()[key].float()) / 2
        assert torch.allclose(weight.float(), want, atol=1e-6), key
    assert mixed.spec.name == "soup" and mixed.spec.topics == a.spec.topics and mixed.spec.ngram_weight == 0
    card = json.loads((out / CARD_JSON).read_text(encoding="utf-8"))
    assert card["kind"] == "weight soup" and [m["version"] for m in card["members"]] == summary["members"]
    assert card["validation_metrics"]["topic"]["n"] == 12 and "(weight soup)" in (out / CARD_MD).read_text("utf-8")
    result = InferenceEngine(out).load().classify(["Aurora Motors recalls 48,000 SUVs"])[0]
    assert result.topic in a.spec.topics and result.sentiment in ("negative", "neutral", "positive")


def test_models_that_cannot_be_averaged_are_refused(
    tmp_path: Path, members: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    other = make_tiny_model_dir(tmp_path / "b", with_chinese=False)  # no Chinese rows: another vocabulary
    assert soup("--out", str(tmp_path / "x"), "--members", str(members[0]), str(other)) == 2
    assert "the members have another encoder configuration or vocabulary" in capsys.readouterr().err
    assert soup("--out", str(tmp_path / "x"), "--members", str(members[0])) == 2
    assert "expected at least two --members, got 1" in capsys.readouterr().err
    nested = tmp_path / "pair"
    assert main(["ensemble", "--out", str(nested), "--members", *map(str, members)]) == 0
    capsys.readouterr()
    assert soup("--out", str(tmp_path / "x"), "--members", str(nested), str(members[0])) == 2
    assert f"member {nested} is itself an ensemble directory" in capsys.readouterr().err
    assert soup("--out", str(members[0]), "--members", *map(str, members)) == 2
    assert "is one of the members" in capsys.readouterr().err
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine", encoding="utf-8")
    assert soup("--out", str(tmp_path / "notes"), "--members", *map(str, members)) == 2
    assert "refusing to write a model over" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_ngram_halves_are_carried_when_identical_and_refused_when_not(
    tmp_path: Path, members: tuple[Path, Path], labelled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, c = (shutil.copytree(m, tmp_path / m.name) for m in members)
    rows = write_jsonl(tmp_path / "rows.jsonl", tiny_rows())
    fit = ["--train", str(rows), "--analysers", "char", "--weight", "0.4"]
    assert main(["ngram", "--model", str(a), *fit]) == 0
    capsys.readouterr()
    assert soup("--out", str(tmp_path / "s"), "--members", str(a), str(c)) == 2
    assert "pass --no-ngram to write the network alone" in capsys.readouterr().err
    run_json(capsys, "soup", "--out", str(tmp_path / "s"), "--members", str(a), str(c), "--no-ngram")
    assert load_model(tmp_path / "s").spec.ngram_weight == 0 and not (tmp_path / "s" / NGRAM_FILES[0]).exists()
    for name in NGRAM_FILES:  # the same half in both members, as one recipe's n-gram command writes it
        shutil.copyfile(a / name, c / name)
    (c / "finsentinel.json").write_text(
        json.dumps({**json.loads((c / "finsentinel.json").read_text("utf-8")), "weights_sha256": "",
                    "ngram_weight": 0.4}), encoding="utf-8")
    run_json(capsys, "soup", "--out", str(tmp_path / "s"), "--members", str(a), str(c))
    carried = load_model(tmp_path / "s").spec
    assert carried.ngram_weight == 0.4 and (tmp_path / "s" / NGRAM_FILES[1]).read_bytes() == (a / NGRAM_FILES[1]).read_bytes()
    assert main(["ngram", "--model", str(tmp_path / "s"), *fit, "--valid", str(labelled), "--label-map", LABEL_MAP]) == 0
    card = (tmp_path / "s" / CARD_MD).read_text(encoding="utf-8")  # refitting keeps the soup's own card
    assert "(weight soup)" in card and "With an n-gram half at weight 0.4 (char" in card


def test_members_of_another_base_model_or_recipe_are_refused(
    tmp_path: Path, members: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    moved = shutil.copytree(members[1], tmp_path / "c")
    card = json.loads((moved / CARD_JSON).read_text(encoding="utf-8"))
    card["base_model"]["sha256"] = "f" * 64  # as if fine-tuned from another checkpoint of the same shape
    (moved / CARD_JSON).write_text(json.dumps(card), encoding="utf-8")
    assert soup("--out", str(tmp_path / "x"), "--members", str(members[0]), str(moved)) == 2
    assert "were fine-tuned from different base models" in capsys.readouterr().err
    longer = shutil.copytree(members[1], tmp_path / "longer")
    spec = json.loads((longer / "finsentinel.json").read_text(encoding="utf-8"))
    (longer / "finsentinel.json").write_text(json.dumps({**spec, "max_length": 64}), encoding="utf-8")
    assert soup("--out", str(tmp_path / "x"), "--members", str(members[0]), str(longer)) == 2
    assert "differ in max_length (32 against 64); a soup averages models of one recipe" in capsys.readouterr().err


def test_average_weights_checks_the_tensors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from finsentinel.errors import ModelError
    from training.soup import average_weights

    files = [tmp_path / f"{n}.safetensors" for n in "abcd"]
    save_file({"w": torch.tensor([1.0, 2.0]), "ids": torch.tensor([0, 1])}, str(files[0]))
    save_file({"w": torch.tensor([3.0, 6.0]), "ids": torch.tensor([0, 1])}, str(files[1]))
    save_file({"w": torch.tensor([3.0, 6.0]), "ids": torch.tensor([1, 0])}, str(files[2]))
    save_file({"v": torch.tensor([3.0, 6.0]), "ids": torch.tensor([0, 1])}, str(files[3]))
    mean = average_weights(files[:2])
    assert torch.equal(mean["w"], torch.tensor([2.0, 4.0])) and torch.equal(mean["ids"], torch.tensor([0, 1]))
    with pytest.raises(ModelError, match="tensor 'ids' is not floating point and differs"):
        average_weights([files[0], files[2]])
    with pytest.raises(ModelError, match="hold different tensors"):
        average_weights([files[0], files[3]])
