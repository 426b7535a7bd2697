"""Parsing and fingerprinting replayed rows in worker processes, with a compact wire format.

A full-speed backfill spends most of its CPU time turning rows into items and fingerprints; with
``parse_workers`` that work (and the items' content hashes for exact dedup) runs in other
processes while the ingest worker deduplicates and publishes. What crosses the process boundary
is kept small and cheap to decode: an item as the dict of its validated fields (pickling the
pydantic model costs about three times as much, JSON needs validating again), a fingerprint as a
tuple of plain values (pickling the dataclass with its numpy array costs about ten times as much).
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import numpy as np
import orjson

from finsentinel.schema import RawItem
from finsentinel.worker import tune_gc
from ingest.dedup import content_digest, prime_keys
from ingest.fingerprint import SIGNATURE_DTYPE, Fingerprint, Fingerprinter, title_key
from ingest.mappings import JsonMapping
from ingest.normalize import detect_lang
from ingest.parse import Options, Skipped, bad_entry, parse_rows

Result = RawItem | Skipped
NOT_MADE = "not made"
"""In place of a fingerprint: none was asked for (an item too short for one gets None)."""

# (tag, payload, fingerprint): tag "i" with (the item's fields, its content digest), or "s" with a Skipped.
Wire = tuple[str, Any, Any]

_FINGERPRINTERS: dict[tuple[int, int, int], Fingerprinter] = {}


def _fingerprinter(params: tuple[int, int, int]) -> Fingerprinter:
    maker = _FINGERPRINTERS.get(params)
    if maker is None:
        maker = _FINGERPRINTERS.setdefault(params, Fingerprinter(*params))
    return maker


def load_models() -> None:
    """Load the language model and the script converter now (each loads once per process)."""
    detect_lang("warming up the language model before the first items arrive")
    title_key("載入繁簡轉換")


def _exit_with(parent: int, every_s: float = 1.0) -> None:
    """End this worker process once ``parent`` is no longer its parent (it died, e.g. SIGKILLed).

    A pool's workers hold both ends of its call queue, so a worker whose ingest process was killed
    never sees the queue close: it would wait for jobs, with its models loaded, until the machine stops.
    """
    while os.getppid() == parent:
        time.sleep(every_s)
    os._exit(0)


def warm(fingerprint: tuple[int, int, int] | None, parent: int | None = None) -> None:
    """Runs in a worker process: :func:`load_models` up front, and collect garbage as rarely as the
    ingest process does (:func:`finsentinel.worker.tune_gc`). With ``parent`` (the ingest process's
    pid), the worker ends itself when that process dies without shutting the pool down."""
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), name="parent-watch", daemon=True).start()
    load_models()
    if fingerprint is not None:
        _fingerprinter(fingerprint)
    tune_gc()


def process_id() -> int:
    """Runs in a worker process: its pid, after a pause that lets the other workers take jobs too."""
    time.sleep(0.05)
    return os.getpid()


def decode_row(line: str, source: str) -> dict[str, object] | Skipped:
    """A JSONL line as a dict, or a Skipped saying why it is not one."""
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError:
        try:  # what orjson refuses and the standard library reads: NaN, integers over 64 bits
            row = json.loads(line)
        except (ValueError, RecursionError) as exc:  # ValueError: also an integer over 4300 digits
            return Skipped(source, "bad_json", f"{type(exc).__name__}: {str(exc)[:120]}: {line[:120]}")
    return row if isinstance(row, dict) else Skipped(source, "bad_entry", line[:200])


def parse_part(raws: list[str | dict[str, object] | Skipped], *, mapping: JsonMapping, opts: Options,
               fingerprint: tuple[int, int, int] | None) -> list[Wire]:
    """Runs in a worker process: JSONL lines or CSV rows to wire results, each with its fingerprint when asked for."""
    maker = _fingerprinter(fingerprint) if fingerprint is not None else None
    out: list[Wire] = []
    for raw in raws:
        try:
            out.append(_wire(raw, mapping, opts, maker))
        except Exception as exc:  # one row the parser cannot handle must not sink the chunk
            out.append(("s", bad_entry(opts.source, exc, raw), NOT_MADE))
    return out


def _wire(raw: str | dict[str, object] | Skipped, mapping: JsonMapping, opts: Options,
          maker: Fingerprinter | None) -> Wire:
    row = decode_row(raw, opts.source) if isinstance(raw, str) else raw
    [result] = parse_rows([row], mapping, opts) if isinstance(row, dict) else [row]
    if isinstance(result, Skipped):
        return ("s", result, NOT_MADE)
    wire_fp: Any = NOT_MADE
    if maker is not None:
        fp = maker.fingerprint(result.title, result.body, result.lang, result.entity_hints,
                               result.published_at.timestamp())
        wire_fp = None if fp is None else (fp.signature.tobytes(), fp.title, tuple(fp.hints), fp.published,
                                           fp.bands, fp.facts)
    return ("i", (result.__dict__, content_digest(result.title, result.body)), wire_fp)


def decode(wire: Wire) -> tuple[Result, Fingerprint | None | str]:
    """A wire result back as a result and its fingerprint (or None, or :data:`NOT_MADE`).

    The item is rebuilt without validating it again: a parse process built it as a validated
    :class:`RawItem` from these very fields. Its dedup keys are remembered (:func:`prime_keys`).
    """
    tag, payload, fp = wire
    if tag == "i":
        fields, digest = payload
        item = RawItem.model_construct(**fields)
        prime_keys(item, digest)
        result: Result = item
    else:
        result = payload
    if fp is None or fp == NOT_MADE:
        return result, fp
    signature, title, hints, published, bands, facts = fp
    return result, Fingerprint(np.frombuffer(signature, dtype=SIGNATURE_DTYPE), title, frozenset(hints),
                               published, bands, facts)
