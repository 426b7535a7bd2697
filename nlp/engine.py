"""The inference engine: tokenise once, bucket by length, run padded batches on a :class:`Runner`.

:class:`InferenceEngine` implements :class:`nlp.base.Classifier` over a model directory on PyTorch
(``torch``) or ONNX Runtime (``onnx`` fp32, ``onnx-int8`` dynamically quantised; see
:mod:`nlp.export`). ``classify`` serves callers that already hold many texts (the classify worker);
``submit`` queues texts for a background thread that merges concurrent requests (dynamic batching
for many small callers): it collects up to ``max_batch * pool`` texts, waiting at most
``max_wait_ms`` after the first queued one, and runs them together.

Length bucketing: all texts of a call (or of a collected pool) are tokenised together (without
padding), sorted by token count and cut into batches of at most ``max_batch``, so each batch is
padded only to its own longest text; a larger pool gives batches of more similar lengths.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from finsentinel.errors import ModelError
from nlp.base import Prediction, Runner
from nlp.model import ModelSpec, check_model_dir
from nlp.ngram import average

log = logging.getLogger(__name__)

Backend = Literal["torch", "onnx", "onnx-int8"]
BACKENDS: tuple[Backend, ...] = ("torch", "onnx", "onnx-int8")


@dataclass(frozen=True)
class PaddedBatch:
    """One padded batch: the positions of its texts in the call and the int64 input arrays."""

    positions: np.ndarray
    arrays: dict[str, np.ndarray]


def bucket_batches(
    encodings: Sequence[Any], input_names: Sequence[str], max_batch: int, pad_id: int = 0
) -> list[PaddedBatch]:
    """Sort encodings (``ids``, ``type_ids``, ``attention_mask``) by length; pad each batch to its longest."""
    lengths = np.array([len(e.ids) for e in encodings])
    order = np.argsort(lengths, kind="stable")
    out = []
    for start in range(0, len(order), max_batch):
        positions = order[start : start + max_batch]
        width = max(1, int(lengths[positions].max()))
        arrays = {name: np.zeros((len(positions), width), dtype=np.int64) for name in input_names}
        arrays["input_ids"].fill(pad_id)
        for row, position in enumerate(positions):
            enc = encodings[position]
            n = len(enc.ids)
            arrays["input_ids"][row, :n] = enc.ids
            arrays["attention_mask"][row, :n] = enc.attention_mask
            if "token_type_ids" in arrays:
                arrays["token_type_ids"][row, :n] = enc.type_ids
        out.append(PaddedBatch(positions, arrays))
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable)."""
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise logistic function in float64."""
    return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))


@dataclass
class _Request:
    texts: list[str]
    future: Future[list[Prediction]]
    queued: float = field(default_factory=time.perf_counter)


class InferenceEngine:
    """Topic + sentiment (+ risk-event) classifier over a model directory, with bucketing and batching.

    The constructor does no I/O; :meth:`load` (or the first call) reads the model. ``threads`` > 0
    sets the backend's CPU threads. ``on_batch`` (for benchmarks) sees every padded batch that runs.
    """

    def __init__(
        self,
        model_dir: str | Path,
        backend: Backend = "torch",
        max_batch: int = 64,
        max_wait_ms: float = 5.0,
        max_length: int | None = None,
        threads: int = 0,
        on_batch: Callable[[PaddedBatch], None] | None = None,
        pool: int = 16,
        ngrams: dict[str, Any] | None = None,
    ) -> None:
        """``ngrams``: n-gram halves already loaded, by :func:`nlp.ngram.ngram_digest`; engines given
        the same dict (an ensemble's members) load a byte-identical half once and share it."""
        if backend not in BACKENDS or max_batch < 1 or max_wait_ms < 0 or threads < 0 or pool < 1:
            raise ModelError(
                f"expected backend one of {BACKENDS}, max_batch >= 1, max_wait_ms >= 0, threads >= 0, "
                f"pool >= 1; got {backend!r}, {max_batch}, {max_wait_ms}, {threads}, {pool}"
            )
        if max_length is not None and max_length < 8:
            raise ModelError(f"expected max_length >= 8 (or None: the model's own), got {max_length}")
        self.model_dir, self.backend = Path(model_dir), backend
        self.max_batch, self.max_wait_s = max_batch, max_wait_ms / 1000.0
        self.max_length, self.threads, self.on_batch, self.pool = max_length, threads, on_batch, pool
        self._state: tuple[ModelSpec, Any, Runner] | None = None
        self._ngram: Any = None
        self._ngrams = ngrams
        self._lock = threading.Lock()
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    # -- loading -----------------------------------------------------------------------------------

    def load(self) -> InferenceEngine:
        """Read the model and start the backend (once); :class:`ModelError` with one clear line if unusable."""
        with self._lock:
            if self._state is None:
                spec = check_model_dir(self.model_dir)
                runner = make_runner(self.model_dir, self.backend, self.threads)
                tokenizer = _fast_tokenizer(self.model_dir, self.max_length or spec.max_length)
                if spec.ngram_weight > 0:
                    self._ngram = self._load_ngram()
                    want = {"topic": list(spec.topics), "sentiment": list(spec.sentiments)}
                    if "events" in self._ngram.labels:  # n-gram halves written before it had one have none
                        want["events"] = list(spec.events)
                    if self._ngram.labels != want:
                        raise ModelError(f"the n-gram model in {self.model_dir} has other labels than the network")
                self._state = (spec, tokenizer, runner)
                log.info("engine %s ready on %s (max batch %d)", self.version, runner.name, self.max_batch)
        return self

    def _load_ngram(self) -> Any:
        from nlp.ngram import NgramModel, ngram_digest

        if self._ngrams is None:
            return NgramModel.load(self.model_dir)
        digest = ngram_digest(self.model_dir)
        if digest not in self._ngrams:
            self._ngrams[digest] = NgramModel.load(self.model_dir)
        return self._ngrams[digest]

    def _loaded(self) -> tuple[ModelSpec, Any, Runner]:
        if self._state is None:
            self.load()
        assert self._state is not None  # noqa: S101 - set by load()
        return self._state

    @property
    def spec(self) -> ModelSpec:
        """The model's ``finsentinel.json``."""
        return self._loaded()[0]

    @property
    def version(self) -> str:
        """Model name and short weights hash, e.g. ``finsentinel-en@3f2a9c1b7d0e``."""
        return self._loaded()[0].version

    @property
    def topics(self) -> tuple[str, ...]:
        """The topic labels of the model."""
        return self._loaded()[0].topics

    @property
    def ngram(self) -> Any:
        """The loaded n-gram half (:class:`nlp.ngram.NgramModel`), or None for a network alone."""
        self._loaded()
        return self._ngram

    @property
    def runner_name(self) -> str:
        """The backend that runs the network (``torch``, ``onnx``, ``onnx-int8``)."""
        return self._loaded()[2].name

    # -- direct path -------------------------------------------------------------------------------

    def probabilities(
        self, texts: Sequence[str], ngram_cache: dict[int, Any] | None = None
    ) -> tuple[np.ndarray, ...]:
        """Per-head probabilities in input order: topic and sentiment (softmax), events (sigmoid).

        ``ngram_cache``: n-gram probabilities of these ``texts`` by loaded half; engines sharing a
        half (an ensemble's members, one call) compute it once.
        """
        out = self.network_probabilities(texts)
        if self._ngram is None or not len(texts):
            return out
        key = id(self._ngram)
        cache = {} if ngram_cache is None else ngram_cache
        if key not in cache:
            cache[key] = self._ngram.probabilities(list(texts))
        return tuple(average(out, cache[key], self.spec.ngram_weight))

    def network_probabilities(self, texts: Sequence[str]) -> tuple[np.ndarray, ...]:
        """The network's own per-head probabilities (without the n-gram half), in input order."""
        spec, tokenizer, runner = self._loaded()
        n_heads = 3 if spec.events else 2
        widths = (len(spec.topics), len(spec.sentiments), len(spec.events))[:n_heads]
        out = [np.zeros((len(texts), w)) for w in widths]
        if not texts:
            return tuple(out)
        encodings = tokenizer.encode_batch(list(texts))
        for batch in bucket_batches(encodings, _input_names(runner), self.max_batch, tokenizer.pad_id):
            if self.on_batch is not None:
                self.on_batch(batch)
            logits = runner.run(batch.arrays)
            if len(logits) < n_heads:
                raise ModelError(f"backend {runner.name} returned {len(logits)} heads, the model has {n_heads}")
            for head in range(n_heads):
                out[head][batch.positions] = sigmoid(logits[head]) if head == 2 else softmax(logits[head])
        return tuple(out)

    def classify(self, texts: Sequence[str]) -> list[Prediction]:
        """One :class:`Prediction` per text, in input order."""
        if not texts:
            return []
        spec = self._loaded()[0]
        probs = self.probabilities(texts)
        return [
            Prediction.from_probabilities(
                {t: round(float(p), 6) for t, p in zip(spec.topics, probs[0][i].tolist(), strict=True)},
                {s: round(float(p), 6) for s, p in zip(spec.sentiments, probs[1][i].tolist(), strict=True)},
                {e: round(float(p), 6) for e, p in zip(spec.events, probs[2][i].tolist(), strict=True)}
                if spec.events
                else None,
            )
            for i in range(len(texts))
        ]

    # -- dynamic batching --------------------------------------------------------------------------

    def submit(self, texts: Sequence[str]) -> Future[list[Prediction]]:
        """Queue texts for the batching thread; the future gets their predictions (or the ModelError)."""
        self._loaded()
        request = _Request(list(texts), Future())
        # Queued under the lock, so a concurrent close() either finds it in the queue it stops (its
        # thread answers it first) or has already given the next thread a queue of its own.
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, args=(self._queue,), name="inference-batcher", daemon=True
                )
                self._thread.start()
            self._queue.put(request)
        return request.future

    def close(self) -> None:
        """Stop the batching thread after the queued requests (idempotent)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)  # the thread stops there; a later submit() starts a new one
                self._queue = queue.Queue()
        if thread is not None:
            thread.join()

    def _gather(self, requests: queue.Queue[_Request | None], first: _Request) -> tuple[list[_Request], bool]:
        """Requests to run together: until ``max_batch * pool`` texts or ``max_wait_ms`` after the first."""
        group, size, deadline = [first], len(first.texts), first.queued + self.max_wait_s
        while size < self.max_batch * self.pool:
            remaining = deadline - time.perf_counter()
            try:
                nxt = requests.get(timeout=remaining) if remaining > 0 else requests.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return group, True
            group.append(nxt)
            size += len(nxt.texts)
        return group, False

    def _serve(self, requests: queue.Queue[_Request | None]) -> None:
        stopping = False
        while not stopping:
            first = requests.get()
            if first is None:
                return
            group, stopping = self._gather(requests, first)
            # A future its caller cancelled while it waited is dropped here; the others become
            # running, so a late cancel() cannot make set_result raise and kill this thread.
            group = [r for r in group if r.future.set_running_or_notify_cancel()]
            if not group:
                continue
            self._run(group)

    def _run(self, group: list[_Request]) -> None:
        """Classify the group's texts together and hand each request its share (or the error).

        When the merged call fails and the group holds several requests, each runs again alone, so
        that a request whose texts cannot be classified fails only itself, not its batch mates.
        """
        texts = [t for r in group for t in r.texts]
        try:
            predictions = self.classify(texts)
        except Exception as exc:  # noqa: BLE001 - any failure must reach the waiting callers, not kill the thread
            if len(group) > 1:
                for r in group:
                    self._run([r])
                return
            if not isinstance(exc, ModelError):
                log.exception("inference request of %d texts failed", len(texts))
            group[0].future.set_exception(exc)
            return
        start = 0
        for r in group:
            r.future.set_result(predictions[start : start + len(r.texts)])
            start += len(r.texts)


def _input_names(runner: Runner) -> tuple[str, ...]:
    names = getattr(runner, "input_names", ("input_ids", "attention_mask", "token_type_ids"))
    return tuple(names)


def _fast_tokenizer(model_dir: Path, max_length: int) -> Any:
    """The directory's ``tokenizers.Tokenizer`` with truncation at ``max_length`` and no padding."""
    from transformers import AutoTokenizer

    try:
        hf = AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"cannot read the tokenizer in {model_dir} ({exc})") from exc
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None:
        raise ModelError(f"the tokenizer in {model_dir} is not a fast tokenizer; re-save it with tokenizer.json")
    backend.enable_truncation(max_length)
    backend.no_padding()  # batches are padded by bucket_batches, each to its own longest text
    return _Tokenizer(backend, int(hf.pad_token_id if hf.pad_token_id is not None else 0))


class _Tokenizer:
    """A tokenizers.Tokenizer that encodes without padding and remembers the pad id."""

    def __init__(self, backend: Any, pad_id: int) -> None:
        self.backend, self.pad_id = backend, pad_id

    def encode_batch(self, texts: list[str]) -> list[Any]:
        return list(self.backend.encode_batch(texts))


def make_runner(model_dir: Path, backend: Backend, threads: int = 0) -> Runner:
    """The runner for ``backend``: PyTorch on the safetensors weights, or an ONNX Runtime session."""
    if backend == "torch":
        from nlp.torch_backend import TorchRunner

        return TorchRunner(model_dir, threads)
    from nlp.onnx_backend import OnnxRunner

    return OnnxRunner(model_dir, quantized=backend == "onnx-int8", threads=threads)
