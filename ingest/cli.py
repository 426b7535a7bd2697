"""`finsentinel` subcommands of the `ingest` package (registered by finsentinel.cli).

``finsentinel ingest status`` (per-source counters and health) is added under the ``ingest``
command that finsentinel.cli defines; ``finsentinel bench ingest`` is the replay benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from finsentinel.settings import Settings


def register(sub: argparse._SubParsersAction, bench: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to ``sub`` and its benchmarks to ``bench``.

    Each command sets ``func=(args, settings) -> int`` with ``set_defaults``; heavy imports go
    inside the command function so that ``finsentinel --help`` stays fast.
    """
    ingest = sub.choices.get("ingest")
    if ingest is not None:
        actions = ingest.add_subparsers(dest="ingest_action", metavar="{status}")
        status = actions.add_parser("status", help="per-source counters and health from the ingest state file")
        status.add_argument("--json", action="store_true", help="print one JSON object")
        status.add_argument("--fail-on-problems", action="store_true",
                            help="exit 1 when a source is paused, failing or suspicious (for health checks)")
        status.set_defaults(func=cmd_status)

    replay = bench.add_parser("ingest", help="replay a generated syndicated stream (JSONL) into the local bus")
    replay.add_argument("--json", action="store_true", help="print one JSON object (the default output too)")
    replay.add_argument("--items", type=int, default=50_000, help="items to generate and replay (default 50000)")
    replay.add_argument("--seed", type=int, default=7, help="seed of the generated stream")
    replay.add_argument("--workdir", type=Path, default=None, help="scratch parent directory (default: system temp)")
    replay.add_argument("--parse-workers", type=int, default=None, metavar="N",
                        help="parse and fingerprint in N extra processes, as the file source's parse_workers "
                             "setting does (default: one per CPU core; 0: all in one process)")
    replay.set_defaults(func=cmd_bench_ingest)


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """``finsentinel ingest status [--json] [--fail-on-problems]``."""
    from ingest.status import format_table, read_healths, statuses

    rows = statuses(settings.ingest, read_healths(settings.ingest.state_path), time.time())
    if args.json:
        sys.stdout.write(json.dumps({"state_path": str(settings.ingest.state_path),
                                     "sources": [asdict(r) for r in rows]}, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(f"ingest state: {settings.ingest.state_path}\n" + format_table(rows))
    problems = [r for r in rows if r.state in ("paused", "failing", "suspicious")]
    return 1 if args.fail_on_problems and problems else 0


def cmd_bench_ingest(args: argparse.Namespace, settings: Settings) -> int:
    """``finsentinel bench ingest [--json]``: one JSON object with ``items_per_s`` and near-dup recall/precision."""
    from ingest.bench import run_bench

    result = run_bench(args.items, seed=args.seed, workdir=args.workdir, settings=settings.ingest,
                       parse_workers=(os.cpu_count() or 1) if args.parse_workers is None else args.parse_workers)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0
