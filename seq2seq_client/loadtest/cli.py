"""`seq2seq-load`: load test a running seq2seq server over gRPC.

    seq2seq-load --target localhost:50051 --concurrency 16 --duration 60 --json run.json
    seq2seq-load --mode poisson --rate 200 --duration 60 --plot run.png --mix my-mix.jsonl

Closed loop (N clients) or open loop (constant or Poisson arrivals at --rate, latency from
each request's intended send time). Before any load: the mix file is checked line by line and
the target must answer ListModels with every model the mix needs. Exit status: 0 done (errors
of the calls are in the report), 2 bad arguments, mix or unreachable target (nothing sent),
1 anything unexpected, 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

PROG = "seq2seq-load"
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad arguments, mix file, output path or target: exit 2, nothing sent."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of usage + message
        raise UsageError(f"{message} (see {self.prog} --help)")


def _number(kind: type, minimum: float, strict: bool = False) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {minimum}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    from seq2seq_client.channel import DEFAULT_TARGET
    from seq2seq_client.commands import add_security_arguments
    from seq2seq_client.loadtest.mix import DEFAULT_MIX
    from seq2seq_client.loadtest.runner import LoadConfig
    from seq2seq_client.loadtest.schedule import MODES

    d = LoadConfig(target="")
    parser = _Parser(prog=PROG, description="Load test a running seq2seq server over gRPC.")
    target = parser.add_argument_group("target")
    target.add_argument(
        "--target",
        default=os.environ.get("SEQ2SEQ_TARGET", DEFAULT_TARGET),
        help="server address, host:port or dns:///name:port; the only address contacted "
        "(default: $SEQ2SEQ_TARGET or %(default)s)",
    )
    add_security_arguments(target)
    target.add_argument(
        "--connect-timeout",
        type=_number(float, 0, strict=True),
        default=d.connect_timeout,
        help="seconds the pre-flight ListModels may take (%(default)s)",
    )

    load = parser.add_argument_group("load")
    load.add_argument(
        "--mix",
        default=DEFAULT_MIX,
        metavar="FILE",
        help="JSON lines of requests (default: held-out inputs of the five default models)",
    )
    load.add_argument("--mode", choices=MODES, default=d.mode, help="(%(default)s)")
    load.add_argument(
        "-c",
        "--concurrency",
        type=_number(int, 1),
        default=d.concurrency,
        help="closed loop: clients (%(default)s)",
    )
    load.add_argument(
        "--connections",
        type=_number(int, 1),
        default=d.connections,
        help="TCP connections the calls are spread over, e.g. to reach every front-end "
        "process of a server (%(default)s)",
    )
    load.add_argument(
        "--rate", type=_number(float, 0, strict=True), help="open loop: requests per second"
    )
    load.add_argument(
        "-d",
        "--duration",
        type=_number(float, 0, strict=True),
        default=d.duration,
        help="seconds measured at most (%(default)s)",
    )
    load.add_argument(
        "-n",
        "--requests",
        type=_number(int, 1),
        default=d.max_requests,
        help="requests measured at most (%(default)s)",
    )
    load.add_argument(
        "--warmup-seconds",
        type=_number(float, 0),
        default=2.0,
        help="warm-up before measuring, not in the figures (%(default)s)",
    )
    load.add_argument(
        "--warmup-requests",
        type=_number(int, 0),
        default=0,
        help="warm-up by count instead of seconds",
    )
    load.add_argument(
        "--deadline",
        type=_number(float, 0, strict=True),
        default=d.deadline,
        help="seconds per call (%(default)s)",
    )
    load.add_argument(
        "--max-in-flight",
        type=_number(int, 1),
        default=d.max_in_flight,
        help="open loop: outstanding calls at most; requests due beyond it are dropped "
        "and counted (%(default)s)",
    )
    load.add_argument("--seed", type=int, default=d.seed, help="Poisson schedule seed")

    output = parser.add_argument_group("output")
    output.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help="write the JSON report (- = standard output; the summary then goes to stderr)",
    )
    output.add_argument("--plot", type=Path, metavar="FILE", help="write the PNG plot")
    output.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    return parser


def _writable(path: Path | None, flag: str) -> None:
    if path is None or (flag == "--json" and str(path) == "-"):
        return
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir() or not folder.is_dir() or not os.access(folder, os.W_OK):
        raise UsageError(f"{flag} {str(path)!r}: not a writable file path")


def run(args: argparse.Namespace) -> int:
    from seq2seq_client.commands import UsageError as ClientUsageError
    from seq2seq_client.commands import tls_config
    from seq2seq_client.loadtest.mix import MixError, load_mix
    from seq2seq_client.loadtest.plot import PlotError, require_matplotlib, save_plot
    from seq2seq_client.loadtest.progress import ProgressLine
    from seq2seq_client.loadtest.report import build_report, summary_text, write_report
    from seq2seq_client.loadtest.runner import LoadConfig, PreflightError, load_test

    try:
        mix = load_mix(args.mix)
        tls = tls_config(args)
        config = LoadConfig(
            target=args.target,
            mode=args.mode,
            concurrency=args.concurrency,
            connections=args.connections,
            rate=args.rate or 0.0,
            duration=args.duration,
            max_requests=args.requests,
            warmup_seconds=args.warmup_seconds,
            warmup_requests=args.warmup_requests,
            deadline=args.deadline,
            max_in_flight=args.max_in_flight,
            seed=args.seed,
            connect_timeout=args.connect_timeout,
            token=args.token,
            tls=tls,
        )
        if args.plot is not None:
            require_matplotlib()
    except (MixError, ClientUsageError, ValueError, PlotError) as exc:
        raise UsageError(str(exc)) from None
    _writable(args.json, "--json")
    _writable(args.plot, "--plot")

    progress = None
    if not args.quiet and sys.stderr.isatty():
        progress = ProgressLine(sys.stderr)
    started_at = datetime.datetime.now(datetime.timezone.utc)
    try:
        stats, models = asyncio.run(load_test(config, mix, progress))
    except PreflightError as exc:
        raise UsageError(str(exc)) from None
    except (OSError, ValueError) as exc:  # unreadable or malformed TLS files
        raise UsageError(f"cannot set up the channel: {exc}") from None
    finally:
        if progress is not None:
            progress.close()
    report = build_report(config, mix, stats, models, started_at)
    to_stdout = args.json is not None and str(args.json) == "-"
    notes = sys.stderr if to_stdout else sys.stdout
    print(summary_text(report), file=notes, flush=True)
    if to_stdout:
        print(json.dumps(report, indent=2), flush=True)
    elif args.json is not None:
        write_report(args.json, report)
        print(f"wrote {args.json}", file=notes, flush=True)
    if args.plot is not None:
        save_plot(report, args.plot)
        print(f"wrote {args.plot}", file=notes, flush=True)
    return 0


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    # gRPC core reads GRPC_VERBOSITY once, on import: keep its log lines out of the output.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    from seq2seq_client.loadtest.plot import PlotError

    try:
        return run(build_parser().parse_args(argv))
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except PlotError as exc:
        return _fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except Exception as exc:  # a bug: still one line, never a traceback
        return _fail(f"unexpected {type(exc).__name__}: {exc}", EXIT_FAILED)


if __name__ == "__main__":
    sys.exit(main())
