"""ONNX Runtime backend: a :class:`nlp.base.Runner` over the ONNX files that :mod:`nlp.export` writes
into a model directory (``onnx/model.onnx`` fp32, ``onnx/model.int8.onnx`` dynamically quantised).

The session is refused when ``onnx/export.json`` was written for other weights than the directory
now holds (a retrained model with a stale export), so the two backends can never disagree silently.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from finsentinel.errors import ModelError
from nlp.model import SPEC_FILE, ModelSpec

log = logging.getLogger(__name__)

ONNX_DIR = "onnx"
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
EXPORT_JSON = "export.json"


def export_hint(model_dir: Path) -> str:
    """The command that (re)creates the ONNX files."""
    return f"run `finsentinel export --model {model_dir}`"


def read_export_record(model_dir: Path) -> dict[str, Any]:
    """``onnx/export.json`` of a model directory, checked against its current weights."""
    record_path = model_dir / ONNX_DIR / EXPORT_JSON
    if not record_path.is_file():
        raise ModelError(f"{model_dir} has no ONNX export ({record_path} is missing); {export_hint(model_dir)}")
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{record_path} is not readable JSON ({exc}); {export_hint(model_dir)}") from exc
    spec = ModelSpec.from_file(model_dir / SPEC_FILE)
    if not isinstance(record, dict) or record.get("weights_sha256") != spec.weights_sha256:
        raise ModelError(
            f"the ONNX export in {model_dir / ONNX_DIR} was made from other weights than the model now "
            f"holds (retrained since?); {export_hint(model_dir)}"
        )
    return record


class OnnxRunner:
    """Runs the exported network with ONNX Runtime on the CPU."""

    def __init__(self, model_dir: Path, quantized: bool = True, threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ModelError("the onnx backends need onnxruntime: pip install onnxruntime") from exc
        read_export_record(model_dir)
        path = model_dir / ONNX_DIR / (INT8_FILE if quantized else FP32_FILE)
        if not path.is_file():
            raise ModelError(f"{path} is missing; {export_hint(model_dir)}")
        self.name = "onnx-int8" if quantized else "onnx"
        self.path = path
        self.session = make_session(path, threads)
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self._ort = ort

    def run(self, batch: Mapping[str, np.ndarray]) -> tuple[np.ndarray, ...]:
        """Head logits for one padded batch (only the inputs the graph declares are fed)."""
        feed = {name: batch[name] for name in self.input_names}
        try:
            return tuple(np.asarray(o) for o in self.session.run(None, feed))
        except Exception as exc:  # onnxruntime raises its own (non-exported) exception classes
            raise ModelError(
                f"ONNX Runtime failed on {self.path} with a batch of shape {batch['input_ids'].shape}: {exc}"
            ) from exc


def make_session(path: Path, threads: int = 0) -> Any:
    """A CPU ``InferenceSession`` with full graph optimisation; ``threads`` > 0 fixes intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    # No busy-waiting between runs: spinning intra-op threads take the cores the engine's own
    # threads (tokenising, the n-gram half, batching) need between two runs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own exception classes
        raise ModelError(f"ONNX Runtime cannot load {path} ({exc}); {export_hint(path.parent.parent)}") from exc
