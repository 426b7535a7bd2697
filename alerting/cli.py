"""`finsentinel` subcommands of the `alerting` package (registered by finsentinel.cli)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from finsentinel.errors import ConfigError
from finsentinel.settings import Settings

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction, bench: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to ``sub`` and its benchmarks to ``bench``.

    Each command sets ``func=(args, settings) -> int`` with ``set_defaults``; heavy imports go
    inside the command function so that ``finsentinel --help`` stays fast.
    """
    detect = sub.add_parser(
        "detect", help="run the spike detector on a count series (NAB format: timestamp,value)",
        description="Run the count-series detector (settings alerting.detect.series) on a CSV with the "
        "header 'timestamp,value' and print the timestamps of the buckets where an episode starts.",
    )
    detect.add_argument("--series", required=True, type=Path, metavar="FILE.csv", help="NAB-format count series")
    detect.add_argument("--json", action="store_true", help='print {"alerts": [timestamp, ...]} as one JSON object')
    detect.set_defaults(func=cmd_detect_series)

    dash = sub.add_parser(
        "dashboard", help="serve the built-in dashboard over the configured index (read-only)",
        description="Serve sentiment by company and topic, alerts and items of the configured index "
        "(alerting.index) at http://HOST:PORT/ (alerting.dashboard); no login unless alerting.dashboard.username "
        "and password are set, so it listens on loopback unless told otherwise.",
    )
    dash.add_argument("--host", default=None, help="address to listen on (default: alerting.dashboard.host)")
    dash.add_argument("--port", type=int, default=None, help="port (default: alerting.dashboard.port, 8050)")
    dash.add_argument("--index", type=Path, default=None, metavar="FILE.sqlite3",
                      help="read this sqlite index instead of the configured one (e.g. demo-workspace/index.sqlite3)")
    dash.set_defaults(func=cmd_dashboard)

    label = sub.add_parser(
        "label", help="store a person's sentiment and/or topic for an indexed item (training data)",
        description="Label one indexed item (its id: the dashboard shows it on each item row) with the "
        "sentiment and/or topic it should have had; a later label of the item replaces what it says and "
        "keeps what it does not (a topic given later keeps the sentiment given before).",
    )
    label.add_argument("item_id", help="the item's id in the index")
    label.add_argument("--sentiment", choices=["negative", "neutral", "positive"], default=None)
    label.add_argument("--topic", default=None, help="a topic of the model that scored it (or of nlp.taxonomy)")
    label.add_argument("--by", default=None, help="who labels (default: the login name)")
    label.add_argument("--note", default="", help="why, for whoever reads the labels later")
    label.set_defaults(func=cmd_label)
    labels = sub.add_parser("labels", help="labels given with `finsentinel label`").add_subparsers(
        dest="action", required=True)
    export = labels.add_parser("export", help="write the labels as a training file for `finsentinel train`")
    export.add_argument("--out", required=True, type=Path, metavar="FILE.jsonl")
    export.add_argument("--since", default=None, help="only labels given at or after this ISO 8601 time")
    export.set_defaults(func=cmd_labels_export)

    index = bench.add_parser("index", help="bulk upsert throughput of the configured index backend")
    index.add_argument("--json", action="store_true", help="print one JSON object (the default output too)")
    index.add_argument("--docs", type=int, default=20_000, help="documents to write (default 20000)")
    index.add_argument("--batch", type=int, default=500, help="documents per upsert, as the index worker (500)")
    index.add_argument("--path", type=Path, default=None,
                       help="sqlite file to write (default: a temporary file, removed afterwards)")
    index.set_defaults(func=cmd_bench_index)

    dash_bench = bench.add_parser("dashboard", help="dashboard request times over a long indexed history")
    dash_bench.add_argument("--json", action="store_true", help="print one JSON object (the default output too)")
    dash_bench.add_argument("--history", type=int, default=100_000, help="items indexed first (default 100000)")
    dash_bench.add_argument("--companies", type=int, default=3_000,
                            help="distinct companies the items name (default 3000; 0: the eight demo names)")
    dash_bench.add_argument("--repeats", type=int, default=5, help="requests of each kind; the median is printed")
    dash_bench.set_defaults(func=cmd_bench_dashboard)

    detect_bench = bench.add_parser("detect", help="live detection run time over a long indexed history")
    detect_bench.add_argument("--json", action="store_true", help="print one JSON object (the default output too)")
    detect_bench.add_argument("--history", type=int, default=100_000, help="items indexed first (default 100000)")
    detect_bench.add_argument("--batch", type=int, default=200, help="new items before each timed run (200)")
    detect_bench.add_argument("--runs", type=int, default=5, help="timed runs (default 5)")
    detect_bench.add_argument("--companies", type=int, default=0,
                              help="distinct companies the items name (default 0: the eight demo names)")
    detect_bench.set_defaults(func=cmd_bench_detect)


def cmd_detect_series(args: argparse.Namespace, settings: Settings) -> int:
    """``finsentinel detect --series FILE.csv [--json]``."""
    from alerting.detect.series import detect_series, read_nab_csv

    texts, times, values = read_nab_csv(args.series)
    as_written = dict(zip(times, texts, strict=True))
    alerts = [as_written[t] for t in detect_series(times, values, settings.alerting.detect.series)]
    if args.json:
        sys.stdout.write(json.dumps({"alerts": alerts}) + "\n")
    else:
        sys.stdout.write("".join(f"{t}\n" for t in alerts))
    return 0


def cmd_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    """``finsentinel dashboard [--host H] [--port P] [--index FILE]``: serve until stopped."""
    from alerting.dashboard.serve import serve

    index_settings = settings.alerting.index
    if args.index is not None:
        index_settings = index_settings.model_copy(update={"backend": "sqlite", "path": args.index})
    dash = settings.alerting.dashboard
    credentials = None
    if dash.username is not None and dash.password is not None:
        credentials = (dash.username, dash.password.get_secret_value())
    serve(index_settings, settings.nlp.watchlist, host=args.host or dash.host,
          port=dash.port if args.port is None else args.port, credentials=credentials)
    return 0


def cmd_label(args: argparse.Namespace, settings: Settings) -> int:
    """``finsentinel label ITEM_ID --sentiment S --topic T``: store the label in the index."""
    import getpass
    from datetime import UTC, datetime

    from alerting.index import open_index
    from alerting.labels import make_label

    index = open_index(settings.alerting.index)  # a sqlite file that is not there is named, not made
    try:
        item = index.get(args.item_id)
        if item is None:
            raise ConfigError(f"no item {args.item_id!r} in the index ({settings.alerting.index.backend}); "
                              "the dashboard shows each item's id when the pointer rests on its row")
        try:
            by = (args.by or "").strip() or getpass.getuser()
        except (OSError, KeyError):
            raise ConfigError("cannot tell who is labelling (no login name): pass --by NAME") from None
        previous = next(iter(index.labels(item_id=item.id, limit=1)), None)
        label = make_label(item, args.sentiment, args.topic, by, args.note, settings.nlp.taxonomy,
                           datetime.now(UTC), previous)
        index.upsert_labels([label])
    finally:
        index.close()
    kept = "" if previous is None else "".join(
        f"; {name} kept from {previous.by}'s label" for name, given, before in
        (("sentiment", args.sentiment, previous.sentiment), ("topic", args.topic, previous.topic))
        if given is None and before is not None)
    sys.stdout.write(f"labelled {item.id}: sentiment {label.sentiment or '-'} (model: {item.sentiment}), "
                     f"topic {label.topic or '-'} (model: {item.topic}), by {by}{kept}\n")
    return 0


def cmd_labels_export(args: argparse.Namespace, settings: Settings) -> int:
    """``finsentinel labels export --out FILE.jsonl [--since T]``: one JSON object with the counts."""
    from alerting.index import open_index
    from alerting.labels import export
    from alerting.views import parse_time

    since = parse_time(args.since, "--since")
    index = open_index(settings.alerting.index)
    try:
        counts = export(index.labels(since=since), args.out)
    finally:
        index.close()
    if not counts["labels"]:
        log.warning("labels export: no labels%s; %s left as it was", f" since {since.isoformat()}" if since else "",
                    args.out)
    sys.stdout.write(json.dumps({"out": str(args.out), **counts}, ensure_ascii=False) + "\n")
    return 0


def cmd_bench_index(args: argparse.Namespace, settings: Settings) -> int:
    """``finsentinel bench index [--json]``: one JSON object with ``docs_per_s``."""
    from alerting.bench import bench_index

    result = bench_index(settings.alerting.index, docs=args.docs, batch=args.batch, path=args.path)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


def cmd_bench_detect(args: argparse.Namespace, settings: Settings) -> int:
    """``finsentinel bench detect [--json]``: one JSON object with ``run_s`` and ``full_rerun_s``."""
    from alerting.bench import bench_detect

    _at_least(args, "bench detect", history=1, batch=1, runs=1, companies=0)
    result = bench_detect(settings.alerting.detect, history=args.history, batch=args.batch, runs=args.runs,
                          companies=args.companies)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


def cmd_bench_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    """``finsentinel bench dashboard [--json]``: one JSON object with each request's median seconds."""
    from alerting.bench import bench_dashboard

    _at_least(args, "bench dashboard", history=1, companies=0, repeats=1)
    result = bench_dashboard(history=args.history, companies=args.companies, repeats=args.repeats)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


def _at_least(args: argparse.Namespace, command: str, **least: int) -> None:
    """A :class:`ConfigError` naming the first option below its least value."""
    for name, bound in least.items():
        if getattr(args, name) < bound:
            raise ConfigError(f"{command}: expected --{name} >= {bound}, got {getattr(args, name)}")
