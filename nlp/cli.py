"""`finsentinel predict`, `finsentinel export` and `finsentinel bench classify` (registered by finsentinel.cli)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from finsentinel.errors import ConfigError
from finsentinel.settings import Settings

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "onnx-int8")
DEFAULT_SAMPLE = Path(__file__).resolve().parents[1] / "training" / "seed" / "probe_headlines.jsonl"
CHUNK = 1024


def register(sub: argparse._SubParsersAction, bench: argparse._SubParsersAction) -> None:
    """Add `predict` and `export` to ``sub`` and `classify` to ``bench``."""
    predict = sub.add_parser("predict", help="add model predictions to each row of a JSONL file")
    predict.add_argument("--model", required=True, type=Path, help="model directory")
    predict.add_argument("--input", required=True, type=Path, help="JSONL file with a 'text' field per row")
    predict.add_argument("--output", required=True, type=Path, help="JSONL file to write")
    predict.add_argument("--backend", choices=BACKENDS, default=None, help="default: nlp.backend")
    predict.set_defaults(func=cmd_predict)

    export = sub.add_parser("export", help="export a model to ONNX (fp32 + int8), checked against PyTorch")
    export.add_argument("--model", required=True, type=Path, help="model directory")
    export.add_argument("--sample", type=Path, default=None,
                        help="texts (JSONL/CSV/parquet 'text') to check the export on (default: bundled probe set)")
    export.add_argument("--sample-size", type=int, default=512, help="at most this many sample texts")
    export.add_argument("--min-agreement", type=float, default=0.97,
                        help="least share of confident rows on which int8 must agree with PyTorch")
    export.add_argument("--fp32-layers", type=int, default=0, metavar="N",
                        help="keep the first N encoder layers in float32 in the int8 model (slower, closer to fp32)")
    export.add_argument("--json", action="store_true", help="print the export record as one JSON object")
    export.set_defaults(func=cmd_export)

    classify = bench.add_parser("classify", help="inference engine throughput/latency vs a bare session")
    classify.add_argument("--model", required=True, type=Path, help="model directory")
    classify.add_argument("--data", required=True, type=Path, help="texts to classify (JSONL/CSV/parquet)")
    classify.add_argument("--backend", choices=BACKENDS, default="onnx-int8")
    classify.add_argument("--batch-size", type=int, default=64, help="engine max batch (default 64)")
    classify.add_argument("--max-wait-ms", type=float, default=5.0, help="engine max wait for a batch")
    classify.add_argument("--pool", type=int, default=16,
                          help="batches' worth of texts bucketed together (default 16)")
    classify.add_argument("--threads", type=int, default=0, help="backend threads (0: library default)")
    classify.add_argument("--limit", type=int, default=None, help="at most this many texts")
    classify.add_argument("--repeat", type=int, default=3, help="runs per side; the fastest counts (default 3)")
    classify.add_argument("--json", action="store_true", help="(default) print one JSON object")
    classify.set_defaults(func=cmd_bench_classify)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        with path.open(encoding="utf-8-sig") as fh:  # -sig: a byte order mark (Windows editors) is skipped
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:  # its lineno counts within the one line
                    raise ConfigError(f"{path} line {n}: not valid JSON ({exc.msg})") from exc
                if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                    raise ConfigError(f"{path} line {n}: expected a JSON object with a 'text' string")
                rows.append(row)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text ({exc.reason}); expected JSON Lines in UTF-8: convert it first, "
            "e.g. `iconv -f GBK -t UTF-8 IN > OUT`"
        ) from exc
    return rows


def prediction_fields(prediction: Any) -> dict[str, Any]:
    """The ``prediction`` object `finsentinel predict` adds to a row."""
    out: dict[str, Any] = {
        "topic": prediction.topic,
        "topic_score": prediction.topic_scores[prediction.topic],
        "sentiment": prediction.sentiment,
        "sentiment_score": round(prediction.sentiment_score, 6),
        "sentiment_scores": dict(prediction.sentiment_scores),
    }
    if prediction.event_scores:
        out["events"] = list(prediction.events)
        out["event_scores"] = dict(prediction.event_scores)
    return out


def cmd_predict(args: argparse.Namespace, settings: Settings) -> int:
    """Classify every row's text and write the rows with a ``prediction`` object and the model version."""
    from nlp.ensemble import open_engine

    rows = _read_jsonl(args.input)
    nlp = settings.nlp
    engine = open_engine(args.model, args.backend or nlp.backend, max_batch=nlp.batch_size, threads=nlp.threads)
    engine.load()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_name(args.output.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            for row, prediction in zip(chunk, engine.classify([r["text"] for r in chunk]), strict=True):
                row = {**row, "prediction": prediction_fields(prediction), "model_version": engine.version}
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
            log.info("predicted %d of %d rows", min(start + CHUNK, len(rows)), len(rows))
    tmp.replace(args.output)
    sys.stdout.write(json.dumps({"rows": len(rows), "output": str(args.output), "model": engine.version}) + "\n")
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    """Export to ONNX, quantise to int8, check against PyTorch; install only if accepted."""
    from nlp.ensemble import member_dirs
    from nlp.export import ExportCheck, export_onnx
    from training.data import texts_of

    sample = texts_of(args.sample or DEFAULT_SAMPLE, args.sample_size)
    if args.fp32_layers < 0:
        raise ConfigError(f"expected --fp32-layers >= 0, got {args.fp32_layers}")
    records = [  # an ensemble exports each member: each is checked on its own
        export_onnx(path, sample, ExportCheck(min_agreement=args.min_agreement), args.fp32_layers)
        for path in member_dirs(args.model)
    ]
    if args.json:
        out = records[0] if len(records) == 1 else {"members": records}
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        return 0
    for path, record in zip(member_dirs(args.model), records, strict=True):
        check = record["check"]
        heads = [h for h in ("topic", "sentiment", "events") if h in check]
        parts = [f"{h}: int8 agreement {check[h]['int8_agreement']:.3f}, fp32 max diff "
                 f"{check[h]['fp32_max_abs_diff']:.1e}" for h in heads]
        sys.stdout.write(f"exported {path}/onnx (checked on {check['sample_rows']} texts; " + "; ".join(parts) + ")\n")
    return 0


def cmd_bench_classify(args: argparse.Namespace, settings: Settings) -> int:
    """Benchmark the engine on the texts of a file; print one JSON object."""
    from nlp.bench import BenchConfig, bench_classify
    from training.data import texts_of

    texts = texts_of(args.data, args.limit)
    config = BenchConfig(args.backend, args.batch_size, args.max_wait_ms, args.threads, args.repeat,
                         pool=args.pool)
    result = bench_classify(args.model, texts, config)
    result["data"] = str(args.data)
    sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    return 0
