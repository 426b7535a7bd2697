"""`finsentinel pretrain`: continued masked-language-model training on unlabelled text.

Starts from a base checkpoint (``bundled-minilm`` or a BERT-family directory), optionally extends
its WordPiece vocabulary with the corpus's unknown characters (:mod:`nlp.vocab`: an English
encoder learns Chinese characters here, from plenty of text, instead of from the labelled rows
only), and trains the encoder to predict masked tokens (15%, BERT's 80/10/10 scheme via
``DataCollatorForLanguageModeling``). The result is a plain Hugging Face checkpoint directory
(safetensors + tokenizer) to pass as ``--base-model`` to ``finsentinel train``. Beside it the
MLM head's own weights (``mlm_head.safetensors``): pre-training that directory again continues the
head it learned instead of starting a fresh one (the learning-rate schedule starts again).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import BertForMaskedLM, DataCollatorForLanguageModeling, get_linear_schedule_with_warmup
from transformers.utils import logging as hf_logging

from finsentinel.errors import ConfigError, ModelError
from nlp.vocab import extend_vocab
from training.card import code_version, rows_sha256
from training.checkpoint import Checkpointer, LoopState, check_checkpoint_dir, run_fingerprint
from training.encoder import load_base, resolve_base_model

log = logging.getLogger(__name__)

PRETRAIN_CARD = "pretraining.json"
MLM_HEAD = "mlm_head.safetensors"
# The decoder's weight is the word-embedding matrix (tied) and its bias is ``predictions.bias``:
# both are stored once, elsewhere, and come back through the tie.
_TIED = frozenset({"predictions.decoder.weight", "predictions.decoder.bias"})


@dataclass(frozen=True)
class MlmArgs:
    """Hyper-parameters of continued pre-training."""

    epochs: int = 1
    lr: float = 1e-4
    batch_size: int = 32
    max_length: int = 128
    mask_probability: float = 0.15
    seed: int = 13
    extend_vocab: bool = True
    threads: int = 0
    train_embeddings: bool = True
    """False freezes the word embeddings (and the decoder tied to them): a 250k-piece vocabulary
    (multilingual-e5) then stays out of the optimiser, which otherwise dominates a step's time."""
    bf16: bool = False
    """bfloat16 autocast for forward and backward (weights and optimiser stay float32)."""

    def __post_init__(self) -> None:
        if not (1 <= self.epochs <= 100 and 0 < self.lr < 1 and self.batch_size >= 1
                and 16 <= self.max_length <= 512 and 0 < self.mask_probability < 1 and self.threads >= 0):
            raise ConfigError(f"invalid pre-training arguments: {self}")


def chunk_texts(texts: Sequence[str], tokenizer: Any, max_length: int) -> list[list[int]]:
    """Token ids of the texts packed into pieces of at most ``max_length`` tokens (with [CLS]/[SEP]).

    Short texts (titles, tweets) are packed together, separated by [SEP], so a batch is not mostly
    padding; a long text is cut into pieces.
    """
    pieces: list[list[int]] = []
    body = max_length - 2
    sep = tokenizer.sep_token_id
    current: list[int] = []
    for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        for start in range(0, len(ids), body):
            part = ids[start : start + body]
            if current and len(current) + 1 + len(part) > body:
                pieces.append(current)
                current = []
            current = [*current, sep, *part] if current else list(part)
    if current:
        pieces.append(current)
    return [[tokenizer.cls_token_id, *p, sep] for p in pieces if p]


def masked_lm_loss(model: BertForMaskedLM, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy over the masked positions only.

    ``BertForMaskedLM`` projects every position onto the vocabulary; with 15% masked that is six
    times the decoder work needed (the decoder is most of a small model's cost with an extended
    vocabulary).
    """
    labels = batch["labels"]
    hidden = model.bert(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask")).last_hidden_state
    selected = labels != -100
    if not bool(selected.any()):  # nothing masked in this batch (tiny batches): no signal, no NaN
        return hidden.sum() * 0.0
    logits = model.cls(hidden[selected])
    return torch.nn.functional.cross_entropy(logits, labels[selected])


def save_mlm_head(model: BertForMaskedLM, out: Path) -> None:
    """Write the MLM head's untied weights (transform and output bias) to ``out/mlm_head.safetensors``."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.cls.state_dict().items() if k not in _TIED}
    save_file(state, str(out / MLM_HEAD))


def load_mlm_head(model: BertForMaskedLM, path: Path) -> bool:
    """Load the head a previous pre-training left in ``path``; False when there is none (a fresh head)."""
    file = path / MLM_HEAD
    if not file.is_file():
        return False
    state = load_file(str(file))
    missing, unexpected = model.cls.load_state_dict(state, strict=False)
    if unexpected or set(missing) - _TIED:
        raise ModelError(f"{file}: expected the MLM head of a BERT model, got keys {sorted(state)}; "
                         "delete the file to pre-train with a fresh head")
    return True


def _step(
    model: BertForMaskedLM,
    batch: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    bf16: bool,
) -> float:
    """One optimiser step on ``batch``; returns its loss."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = masked_lm_loss(model, batch)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def _train(
    model: BertForMaskedLM,
    tokenizer: Any,
    pieces: list[list[int]],
    args: MlmArgs,
    report: Callable[[str], None],
    checkpoint: Checkpointer | None,
) -> tuple[int, float]:
    """The masked-LM loop; returns (steps done, last loss). Saves ``checkpoint`` every quarter epoch."""
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=args.mask_probability)
    per_epoch = (len(pieces) + args.batch_size - 1) // args.batch_size
    steps, quarter = per_epoch * args.epochs, max(1, per_epoch // 4)
    model.bert.get_input_embeddings().weight.requires_grad_(args.train_embeddings)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.06 * steps), steps)
    state = checkpoint.resume(model, optimizer, scheduler, report)[0] if checkpoint else LoopState()
    shuffles = random.Random(args.seed)  # noqa: S311 (batch order, not secrets): recreated in turn on resume
    started, last_loss = time.perf_counter(), float("nan")
    model.train()
    for epoch in range(1, args.epochs + 1):
        order = list(range(len(pieces)))
        shuffles.shuffle(order)
        if epoch < state.epoch:
            continue  # finished before the checkpoint
        for batch_no in range(state.batch_no, per_epoch):
            chosen = order[batch_no * args.batch_size : (batch_no + 1) * args.batch_size]
            last_loss = _step(model, collator([{"input_ids": pieces[i]} for i in chosen]), optimizer, scheduler,
                              args.bf16)
            state.steps, state.batch_no = state.steps + 1, batch_no + 1
            if state.steps % max(1, steps // 20) == 0 or state.steps == steps:
                report(f"pre-training epoch {epoch}/{args.epochs} step {state.steps}/{steps} loss {last_loss:.3f} "
                       f"({time.perf_counter() - started:.0f}s)")
            if checkpoint and state.batch_no % quarter == 0 and state.batch_no < per_epoch:
                checkpoint.save(model, optimizer, state, None)
        state.history.append({"epoch": epoch, "last_loss": round(last_loss, 4)})
        state.epoch, state.batch_no = epoch + 1, 0
        if checkpoint:
            checkpoint.save(model, optimizer, state, None)
    return state.steps, float(state.history[-1]["last_loss"])


def pretrain_mlm(
    base_model: str | Path,
    texts: Sequence[str],
    args: MlmArgs,
    out_dir: str | Path,
    progress: Callable[[str], None] | None = None,
    sources: Sequence[str] = (),
    checkpoint_dir: str | Path | None = None,
) -> dict[str, object]:
    """Continue MLM training on ``texts`` and write a checkpoint directory; return a short summary.

    The directory also gets ``pretraining.json``, its card: the base model, the corpus files
    (``sources``) and text count, the arguments, the summary (last loss included) and the code
    version. With ``checkpoint_dir`` the run's state is saved there every quarter epoch, the same
    pre-training (texts, arguments, base) started again resumes it, and it is deleted at the end.
    """
    report = progress or (lambda message: log.info("%s", message))
    if not texts:
        raise ConfigError("pre-training needs at least one text")
    if checkpoint_dir is not None:
        check_checkpoint_dir(Path(checkpoint_dir), Path(out_dir))
    previous = torch.get_num_threads()
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        random.seed(args.seed)
        torch.manual_seed(args.seed)
        path = resolve_base_model(base_model)
        tokenizer, encoder = load_base(path)
        hf_logging.set_verbosity_error()  # a base without an MLM head gets a fresh one: expected, not a warning
        model = BertForMaskedLM.from_pretrained(path, use_safetensors=True)
        continued = load_mlm_head(model, path)
        # logged before a checkpoint resumes, which then replaces the head with its own
        report(f"MLM head of the base model: {'loaded from ' + str(path) if continued else 'none saved, a fresh one'}")
        added = extend_vocab(tokenizer, model, texts, seed=args.seed) if args.extend_vocab else 0
        report(f"pre-training: added {added} characters of the corpus to the vocabulary")
        texts_sha256 = rows_sha256([{"text": t} for t in texts])
        checkpoint = (Checkpointer(Path(checkpoint_dir), run_fingerprint(texts_sha256, asdict(args), path))
                      if checkpoint_dir is not None else None)
        pieces, started = chunk_texts(texts, tokenizer, args.max_length), time.perf_counter()
        steps, last_loss = _train(model, tokenizer, pieces, args, report, checkpoint)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        # BertForMaskedLM has no pooler: keep the base's, or loading the result reports it missing
        model.bert.pooler = getattr(encoder, "pooler", None)
        model.bert.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        save_mlm_head(model, out)
        summary: dict[str, object] = {
            "out_dir": str(out), "pieces": len(pieces), "steps": steps,
            "added_tokens": added, "continued_head": continued, "last_loss": last_loss,
            "seconds": round(time.perf_counter() - started, 1)}
        card = {"base_model": str(base_model), "sources": list(sources), "texts": len(texts),
                "arguments": asdict(args), "result": summary, "code_version": code_version()}
        (out / PRETRAIN_CARD).write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        if checkpoint is not None:
            checkpoint.remove()
    except (OSError, RuntimeError, ValueError) as exc:
        raise ModelError(f"continued pre-training from {base_model} failed: {exc}") from exc
    finally:
        torch.set_num_threads(previous)
    return summary
