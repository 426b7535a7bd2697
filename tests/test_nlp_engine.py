"""The inference engine on a tiny model: bucketing keeps input order, backends agree, dynamic batching
respects its size and wait bounds, and an unusable export fails with one clear line."""

from __future__ import annotations

import json
import queue
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from finsentinel.errors import ModelError
from finsentinel.schema import SENTIMENTS
from nlp.base import Classifier
from nlp.engine import InferenceEngine, PaddedBatch, bucket_batches, softmax
from nlp.export import ExportCheck, export_onnx
from nlp.onnx_backend import EXPORT_JSON, ONNX_DIR
from tests.tiny_model import make_tiny_model_dir, tiny_rows

TEXTS = [
    "a much longer headline about Aurora Motors shares that plunge after the regulator opens a probe",
    "股价跌",
    "",
    "profit beats estimates",
    "极光汽车遭证监会立案调查",
    "Halcyon to report Q3 results",
    "shares " * 80,
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = make_tiny_model_dir(tmp_path_factory.mktemp("engine") / "tiny")
    export_onnx(path, [r["text"] for r in tiny_rows()] + TEXTS)
    return path


def test_engine_is_a_classifier_and_bucketing_keeps_order(model_dir: Path) -> None:
    seen: list[PaddedBatch] = []
    engine = InferenceEngine(model_dir, "torch", max_batch=2, on_batch=seen.append)
    assert isinstance(engine, Classifier) and engine.version.startswith("tiny-test@")
    batched = engine.classify(TEXTS)
    assert len(seen) == 4 and all(len(b.positions) <= 2 for b in seen)
    widths = [b.arrays["input_ids"].shape[1] for b in seen]
    assert widths == sorted(widths) and widths[-1] == 32  # sorted by length, truncated at max_length
    for text, prediction in zip(TEXTS, batched, strict=True):
        alone = engine.classify([text])[0]
        assert alone.topic == prediction.topic
        for label, p in alone.sentiment_scores.items():
            assert p == pytest.approx(prediction.sentiment_scores[label], abs=1e-5)
    assert engine.classify([]) == []


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_onnx_backends_match_pytorch(model_dir: Path, backend: str) -> None:
    torch_probs = InferenceEngine(model_dir, "torch").probabilities(TEXTS)
    onnx_probs = InferenceEngine(model_dir, backend).probabilities(TEXTS)  # type: ignore[arg-type]
    tolerance = 1e-4 if backend == "onnx" else 0.05
    for ours, reference in zip(onnx_probs, torch_probs, strict=True):
        assert np.abs(ours - reference).max() < tolerance


def test_dynamic_batching_merges_concurrent_requests_within_bounds(model_dir: Path) -> None:
    seen: list[PaddedBatch] = []
    engine = InferenceEngine(model_dir, "onnx", max_batch=4, max_wait_ms=200, on_batch=seen.append)
    expected = engine.classify(TEXTS)
    seen.clear()
    futures = [engine.submit([t]) for t in TEXTS]  # queued faster than the 200 ms wait bound
    results = [f.result(timeout=30)[0] for f in futures]
    engine.close()
    assert [r.topic for r in results] == [e.topic for e in expected]
    assert [len(b.positions) for b in seen] == [4, 3]  # one pool of 7 (< 4 * 16), bucketed into 4 + 3


def test_wait_bound_releases_a_lone_request(model_dir: Path) -> None:
    engine = InferenceEngine(model_dir, "torch", max_batch=64, max_wait_ms=20)
    engine.load()
    started = time.perf_counter()
    assert len(engine.submit(["profit beats estimates"]).result(timeout=30)) == 1
    assert time.perf_counter() - started < 5  # not held until 64 texts arrive
    engine.close()
    engine.close()  # idempotent


def test_model_errors_reach_every_waiting_future(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = InferenceEngine(model_dir, "torch", max_batch=8, max_wait_ms=50)
    engine.load()

    def broken(texts: object) -> object:
        raise ModelError("backend exploded")

    monkeypatch.setattr(engine, "classify", broken)
    futures = [engine.submit(["a"]), engine.submit(["b"])]
    for future in futures:
        with pytest.raises(ModelError, match="backend exploded"):
            future.result(timeout=30)
    engine.close()


def test_concurrent_callers_each_get_their_own_results(model_dir: Path) -> None:
    # fp32: dynamic int8 quantises activations per batch, so its scores shift slightly with the batch mates
    engine = InferenceEngine(model_dir, "onnx", max_batch=16, max_wait_ms=2)
    expected = {t: p.sentiment_scores for t, p in zip(TEXTS, engine.classify(TEXTS), strict=True)}
    errors: list[str] = []

    def caller(offset: int) -> None:
        for i in range(20):
            text = TEXTS[(offset + i) % len(TEXTS)]
            got = engine.submit([text]).result(timeout=30)[0].sentiment_scores
            if any(abs(got[k] - expected[text][k]) > 1e-4 for k in got):
                errors.append(text)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.close()
    assert errors == []


def test_a_cancelled_request_does_not_stop_the_batcher(model_dir: Path) -> None:
    engine = InferenceEngine(model_dir, "torch", max_batch=8, max_wait_ms=300)
    engine.load()
    abandoned = engine.submit(["profit beats estimates"])  # held up to 300 ms for batch mates
    assert abandoned.cancel()  # e.g. a caller whose own timeout ran out
    later = engine.submit(["shares plunge"])
    assert len(later.result(timeout=30)) == 1
    assert len(engine.submit(["court rules"]).result(timeout=30)) == 1
    engine.close()


def test_a_request_that_fails_does_not_fail_its_batch_mates(model_dir: Path) -> None:
    engine = InferenceEngine(model_dir, "torch", max_batch=8, max_wait_ms=300)
    engine.load()
    good = engine.submit(["profit beats estimates"])
    bad = engine.submit(["broken \ud800 text"])  # a lone surrogate: the tokenizer refuses it
    other = engine.submit(["shares plunge", "court rules"])
    assert len(good.result(timeout=30)) == 1 and len(other.result(timeout=30)) == 2
    with pytest.raises(TypeError):
        bad.result(timeout=30)
    engine.close()


def test_a_request_submitted_while_the_engine_closes_is_still_answered(model_dir: Path) -> None:
    engine = InferenceEngine(model_dir, "torch", max_batch=8, max_wait_ms=1)

    class LateQueue(queue.Queue):
        """Once ``late``, delays a request's put until close() has begun: a racing submit()."""

        late = False

        def put(self, item: object, block: bool = True, timeout: float | None = None) -> None:
            if item is not None and self.late:
                deadline = time.perf_counter() + 1
                while engine._thread is not None and time.perf_counter() < deadline:
                    time.sleep(0.001)
                time.sleep(0.2)
            super().put(item, block, timeout)

    engine._queue = late = LateQueue()
    engine.submit(["warm up"]).result(timeout=30)  # the batching thread is running
    late.late = True
    submitted: list[object] = []
    caller = threading.Thread(target=lambda: submitted.append(engine.submit(["profit beats estimates"])))
    caller.start()
    time.sleep(0.05)
    engine.close()
    caller.join()
    assert len(submitted[0].result(timeout=10)) == 1  # type: ignore[attr-defined]
    engine.close()


def test_bad_engine_arguments_are_refused(model_dir: Path) -> None:
    with pytest.raises(ModelError, match="expected backend one of"):
        InferenceEngine(model_dir, "tensorrt")  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="max_length >= 8"):
        InferenceEngine(model_dir, max_length=4)


def test_onnx_backend_needs_a_current_export(model_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(model_dir, tmp_path / "copy"))
    shutil.rmtree(copy / ONNX_DIR)
    with pytest.raises(ModelError, match="has no ONNX export.*finsentinel export --model"):
        InferenceEngine(copy, "onnx-int8").load()
    stale = Path(shutil.copytree(model_dir, tmp_path / "stale"))
    record = json.loads((stale / ONNX_DIR / EXPORT_JSON).read_text(encoding="utf-8"))
    record["weights_sha256"] = "0" * 64
    (stale / ONNX_DIR / EXPORT_JSON).write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(ModelError, match="made from other weights"):
        InferenceEngine(stale, "onnx").load()


def test_a_failed_export_check_leaves_the_directory_unchanged(model_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(model_dir, tmp_path / "copy"))
    before = (copy / ONNX_DIR / EXPORT_JSON).read_bytes()
    with pytest.raises(ModelError, match="ONNX export rejected.*fp32 ONNX differs"):
        export_onnx(copy, TEXTS, ExportCheck(max_fp32_diff=-1.0))
    assert (copy / ONNX_DIR / EXPORT_JSON).read_bytes() == before
    assert sorted(p.name for p in copy.iterdir() if p.name.startswith(".")) == []
    with pytest.raises(ModelError, match="at least one sample text"):
        export_onnx(copy, [])


def test_an_export_killed_half_way_is_undone_by_the_next_one(model_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(model_dir, tmp_path / "copy"))
    before = (copy / ONNX_DIR / EXPORT_JSON).read_bytes()
    # Killed during the check of a new export: the previous export set aside, the unchecked one in onnx/.
    shutil.copytree(copy / ONNX_DIR, copy / ".onnx-previous")
    unchecked = {k: v for k, v in json.loads(before).items() if k != "check"}
    (copy / ONNX_DIR / EXPORT_JSON).write_text(json.dumps(unchecked), encoding="utf-8")
    (copy / ".onnx-staging-killed").mkdir()
    with pytest.raises(ModelError, match="ONNX export rejected"):
        export_onnx(copy, TEXTS, ExportCheck(max_fp32_diff=-1.0))
    assert (copy / ONNX_DIR / EXPORT_JSON).read_bytes() == before  # the checked export is back
    assert sorted(p.name for p in copy.iterdir() if p.name.startswith(".")) == []
    # Killed after its check passed, before the set-aside copy was removed: the next export goes ahead.
    shutil.copytree(copy / ONNX_DIR, copy / ".onnx-previous")
    assert export_onnx(copy, TEXTS)["check"]["accepted"]
    assert sorted(p.name for p in copy.iterdir() if p.name.startswith(".")) == []


def test_bucket_batches_pads_each_batch_to_its_longest() -> None:
    class Enc:
        def __init__(self, n: int) -> None:
            self.ids, self.type_ids, self.attention_mask = [7] * n, [0] * n, [1] * n

    batches = bucket_batches([Enc(5), Enc(2), Enc(9), Enc(3)], ("input_ids", "attention_mask"), 2, pad_id=1)
    assert [b.positions.tolist() for b in batches] == [[1, 3], [0, 2]]
    assert batches[0].arrays["input_ids"].tolist() == [[7, 7, 1], [7, 7, 7]]
    assert batches[1].arrays["attention_mask"].sum() == 14 and "token_type_ids" not in batches[0].arrays
    assert softmax(np.array([[0.0, 0.0], [1000.0, 0.0]])).tolist() == [[0.5, 0.5], [1.0, 0.0]]


def test_first_layers_can_stay_fp32_in_the_int8_model(model_dir: Path, tmp_path: Path) -> None:
    import onnx

    def quantised(path: Path) -> int:
        graph = onnx.load(str(path / ONNX_DIR / "model.int8.onnx")).graph
        return sum(n.op_type == "MatMulInteger" for n in graph.node)

    copy = Path(shutil.copytree(model_dir, tmp_path / "copy"))
    record = export_onnx(copy, TEXTS, fp32_layers=1)
    assert "layers 0-0 kept in fp32" in record["quantization"]
    assert 0 < quantised(copy) < quantised(model_dir)  # the tiny model has 2 layers: half stay fp32
    assert InferenceEngine(copy, "onnx-int8").classify(["profit beats estimates"])[0].sentiment in SENTIMENTS


def test_fp32_layers_needs_named_encoder_layers(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from finsentinel.cli import main
    from nlp.export import _quantize

    weight = numpy_helper.from_array(np.ones((4, 4), dtype=np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [weight])
    onnx.save(helper.make_model(graph), str(tmp_path / "m.onnx"))
    with pytest.raises(ModelError, match="nodes named '/layer.N/'.*export without --fp32-layers"):
        _quantize(tmp_path / "m.onnx", tmp_path / "q.onnx", fp32_layers=2)
    assert main(["export", "--model", str(tmp_path), "--fp32-layers", "-1"]) == 2
