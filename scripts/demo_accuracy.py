"""Sentiment accuracy of a model on the demo feeds, against the labels their generator wrote them with.

Usage: .venv/bin/python scripts/demo_accuracy.py [MODEL_DIR]   (default models/finsentinel-seed; an ensemble directory works too)
"""

from __future__ import annotations

import json
import sys
from collections import Counter

from ingest.demo_feeds import build_stories
from nlp.ensemble import open_engine

FULL = {"neg": "negative", "neu": "neutral", "pos": "positive"}


def main() -> None:
    stories, _ = build_stories()
    classifier = open_engine(sys.argv[1] if len(sys.argv) > 1 else "models/finsentinel-seed")  # a model or an ensemble
    predictions = classifier.classify([f"{s.title}\n{s.body}".strip() for s in stories])
    pairs = [(s.lang, FULL.get(s.sentiment, s.sentiment), p.sentiment) for s, p in zip(stories, predictions, strict=True)]
    result: dict[str, object] = {"n": len(pairs), "accuracy": round(sum(t == p for _, t, p in pairs) / len(pairs), 3)}
    for lang in ("en", "zh"):
        sub = [(t, p) for lang_, t, p in pairs if lang_ == lang]
        result[f"accuracy_{lang}"] = round(sum(t == p for t, p in sub) / len(sub), 3)
        result[f"confusion_{lang}"] = {f"{t}->{p}": n for (t, p), n in sorted(Counter(sub).items())}
    result["confusion"] = {f"{t}->{p}": n for (t, p), n in sorted(Counter((t, p) for _, t, p in pairs).items())}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
