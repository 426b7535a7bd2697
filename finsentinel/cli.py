"""The ``finsentinel`` command line.

Every command loads settings once, configures logging once, and turns a
:class:`FinSentinelError` into one line on stderr and exit status 2 (never a bare traceback).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from finsentinel import __version__
from finsentinel.errors import FinSentinelError
from finsentinel.log import configure
from finsentinel.settings import Settings, load_settings, render_settings

log = logging.getLogger(__name__)

Command = Callable[[argparse.Namespace, Settings], int]

# Each stage package adds its own subcommands (and `bench` targets) through ``register(sub, bench_sub)``
# in its ``cli`` module, which imports nothing heavy at module level.
PLUGIN_MODULES = ("ingest.cli", "nlp.cli", "training.cli", "alerting.cli")


def _stop_on_signals() -> threading.Event:
    """An event set by SIGINT/SIGTERM, so workers finish their batch, commit and exit."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("received signal %s, stopping after the current batch", signum)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def cmd_config_show(args: argparse.Namespace, settings: Settings) -> int:
    """Print the effective settings, secrets masked."""
    sys.stdout.write(render_settings(settings))
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Run ingest → classify → index → detect on the bundled feeds and print a summary."""
    from finsentinel.demo import format_summary, run_demo

    result = run_demo(settings, Path(args.workspace), progress=_progress)
    if args.json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write(format_summary(result))
    return 0


def cmd_seed_model(args: argparse.Namespace, settings: Settings) -> int:
    """Train (or reuse) the default seed model in ``nlp.model_dir``."""
    from training.seed import ensure_seed_model

    path = ensure_seed_model(settings.nlp.model_dir, settings.nlp.base_model, progress=_progress)
    sys.stdout.write(f"{path}\n")
    return 0


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    """Run the ingest worker (or one pass with --once)."""
    from finsentinel.runtime import run_ingest

    stats = run_ingest(settings, once=args.once, demo_sources=args.demo_sources, stop=_stop_on_signals())
    sys.stdout.write(json.dumps(stats, ensure_ascii=False) + "\n")
    return 0


def cmd_classify(args: argparse.Namespace, settings: Settings) -> int:
    """Run the classify worker: news.raw → model → news.scored."""
    from finsentinel.runtime import run_classify

    stats = run_classify(settings, stop=_stop_on_signals(), idle_exit_s=args.idle_exit)
    sys.stdout.write(json.dumps(stats) + "\n")
    return 0


def cmd_alert(args: argparse.Namespace, settings: Settings) -> int:
    """Run the alert worker: news.scored → index → spike detection → alerts."""
    from finsentinel.runtime import run_alert

    stats = run_alert(settings, stop=_stop_on_signals(), idle_exit_s=args.idle_exit)
    sys.stdout.write(json.dumps(stats) + "\n")
    return 0


def _progress(message: str) -> None:
    """Progress of long work (model training, demo stages), through logging: shown at INFO."""
    log.info("%s", message)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="finsentinel", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"finsentinel {__version__}")
    parser.add_argument("-c", "--config", help="settings file (default: $FINSENTINEL_CONFIG or ./finsentinel.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)

    config = sub.add_parser("config", help="inspect settings").add_subparsers(dest="action", required=True)
    config.add_parser("show", help="print the effective settings, secrets masked").set_defaults(func=cmd_config_show)

    demo = sub.add_parser("demo", help="run the whole pipeline on the bundled feeds, offline")
    demo.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    demo.add_argument("--workspace", default="demo-workspace", help="scratch directory, wiped at each run")
    demo.set_defaults(func=cmd_demo)

    sub.add_parser("seed-model", help="train or reuse the default seed model").set_defaults(func=cmd_seed_model)

    ingest = sub.add_parser("ingest", help="run the ingest worker")
    ingest.add_argument("--once", action="store_true", help="one pass over every source, then exit")
    ingest.add_argument("--demo-sources", action="store_true", help="read the bundled demo feeds")
    ingest.set_defaults(func=cmd_ingest)

    for name, func, text in (
        ("classify", cmd_classify, "run the classify worker"),
        ("alert", cmd_alert, "run the index + alert worker"),
    ):
        worker = sub.add_parser(name, help=text)
        worker.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS",
                            help="exit after this long with nothing to do (default: run until stopped)")
        worker.set_defaults(func=func)
    bench = sub.add_parser("bench", help="benchmarks; each prints one JSON object")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    for module in PLUGIN_MODULES:
        register = getattr(importlib.import_module(module), "register", None)
        if register is not None:
            register(sub, bench_sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``finsentinel`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        configure(settings.log_level)
        from finsentinel import metrics

        metrics.serve(settings.metrics_port)
        return int(args.func(args, settings))
    except FinSentinelError as exc:
        sys.stderr.write(f"finsentinel: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("finsentinel: interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
