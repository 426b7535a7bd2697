"""Deterministic generator of the seed data: labelled bilingual financial headlines.

The default model of FinSentinel is fine-tuned on these rows so that it works offline on a
fresh clone. Each row has ``text``, ``label`` (negative / neutral / positive), ``topic`` (eight
topics named as in the twitter-financial-news-topic taxonomy) and ``lang`` (en / zh).

Rows are composed from several hand-written templates per (topic, sentiment, language) with
varied fillers (numbers, verbs, fictional companies). Two files are written:

* ``seed_labels.jsonl``: the training split;
* ``seed_labels_heldout.jsonl``: the held-out split, built from the same templates but with
  companies, brokers, countries and people that never occur in training and fresh fillers, so its
  metrics measure generalisation to unseen entities (not to unseen phrasing).

``python -m training.seed_data`` regenerates both files; ``--check`` verifies the committed ones.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from training.seed_fillers import ENTITIES, HELDOUT_COMPANIES, TRAIN_COMPANIES, VALUES, WORDS, company_mention
from training.seed_templates_en import EN
from training.seed_templates_zh import ZH

SEED = 20240601
SEED_DIR = Path(__file__).resolve().parent / "seed"
TRAIN_FILE = "seed_labels.jsonl"
HELDOUT_FILE = "seed_labels_heldout.jsonl"
PROBE_FILE = "probe_headlines.jsonl"
TOPICS: tuple[str, ...] = (
    "Analyst Update",
    "Company | Product News",
    "Earnings",
    "Legal | Regulation",
    "M&A | Investments",
    "Macro",
    "Personnel Change",
    "Stock Movement",
)
SENTIMENT_LABELS = ("negative", "neutral", "positive")
LANGS = ("en", "zh")
ROWS_PER_CELL = {"train": 32, "heldout": 6}
_FIELD = re.compile(r"\{(\w+)\}")


class _Filler:
    """Fills one template's placeholders, consistently within the row (``{co}`` twice = same company)."""

    def __init__(self, rng: random.Random, lang: str, split: str) -> None:
        self.rng, self.lang, self.split = rng, lang, split
        self.companies = TRAIN_COMPANIES if split == "train" else HELDOUT_COMPANIES
        self.values: dict[str, str] = {}
        self.used_companies: set[int] = set()

    def __call__(self, match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in self.values:
            self.values[key] = self._draw(key)
        return self.values[key]

    def _draw(self, key: str) -> str:
        if key in ("co", "co2"):
            choices = [i for i in range(len(self.companies)) if i not in self.used_companies]
            index = self.rng.choice(choices)
            self.used_companies.add(index)
            company = self.companies[index]
            return (
                company_mention(self.rng, company, self.lang)
                if key == "co"
                else company[0 if self.lang == "en" else 1]
            )
        if key in ENTITIES:
            train_pool, heldout_pool = ENTITIES[key][self.lang]
            return self.rng.choice(train_pool if self.split == "train" else heldout_pool)
        if key in WORDS:
            return self.rng.choice(WORDS[key][self.lang])
        return VALUES[key][self.lang](self.rng)


def _cell_rows(topic: str, label: str, lang: str, split: str, exclude: set[str]) -> list[dict[str, str]]:
    templates = (EN if lang == "en" else ZH)[(topic, label)]
    rng = random.Random(f"{SEED}|{split}|{topic}|{label}|{lang}")  # noqa: S311 - reproducible data, not secrets
    order = list(templates)
    rng.shuffle(order)
    target = ROWS_PER_CELL[split]
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for attempt in range(target * 40):
        text = _FIELD.sub(_Filler(rng, lang, split), order[attempt % len(order)])
        if text in seen or text in exclude:
            continue
        seen.add(text)
        rows.append({"text": text, "label": label, "topic": topic, "lang": lang})
        if len(rows) == target:
            return rows
    raise RuntimeError(f"templates of {topic}/{label}/{lang} yield only {len(rows)} distinct {split} rows")


def generate(split: str, exclude: Sequence[str] = ()) -> list[dict[str, str]]:
    """All rows of ``split`` ('train' or 'heldout'), in a fixed order; ``exclude`` texts are skipped."""
    excluded = set(exclude)
    return [
        row
        for lang in LANGS
        for topic in TOPICS
        for label in SENTIMENT_LABELS
        for row in _cell_rows(topic, label, lang, split, excluded)
    ]


def generate_splits() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(train rows, held-out rows); no held-out text occurs in training."""
    train = generate("train")
    return train, generate("heldout", exclude=[r["text"] for r in train])


def to_jsonl(rows: Sequence[dict[str, Any]]) -> bytes:
    """One compact JSON object per line, UTF-8, Chinese unescaped."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def seed_files(directory: Path = SEED_DIR) -> tuple[Path, Path]:
    """Paths of the committed (train, held-out) seed files."""
    return directory / TRAIN_FILE, directory / HELDOUT_FILE


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_seed_files(directory: Path = SEED_DIR) -> tuple[Path, Path]:
    """Regenerate both seed files in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    train_path, heldout_path = seed_files(directory)
    train, heldout = generate_splits()
    train_path.write_bytes(to_jsonl(train))
    heldout_path.write_bytes(to_jsonl(heldout))
    return train_path, heldout_path


def _iter_stats(rows: Sequence[dict[str, str]]) -> Iterator[str]:
    for lang in LANGS:
        for label in SENTIMENT_LABELS:
            yield f"{lang}/{label}={sum(r['lang'] == lang and r['label'] == label for r in rows)}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.seed_data [--check] [--out DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m training.seed_data", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=SEED_DIR, help="directory to write (default: the package's)"
    )
    parser.add_argument("--check", action="store_true", help="only verify that the files are up to date")
    args = parser.parse_args(argv)
    train, heldout = generate_splits()
    if args.check:
        stale = [
            p
            for p, rows in zip(seed_files(args.out), (train, heldout), strict=True)
            if not p.is_file() or p.read_bytes() != to_jsonl(rows)
        ]
        for path in stale:
            sys.stderr.write(f"{path} is out of date: run python -m training.seed_data\n")
        return 1 if stale else 0
    paths = write_seed_files(args.out)
    sys.stdout.write(f"wrote {len(train)} rows to {paths[0]} and {len(heldout)} rows to {paths[1]}\n")
    sys.stdout.write("train " + " ".join(_iter_stats(train)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
