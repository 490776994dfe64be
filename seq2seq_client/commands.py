"""The `seq2seq` command line (entry point: seq2seq_client.cli): parser, calls, output."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import grpc

from seq2seq_client.channel import DEFAULT_TARGET, TlsConfig
from seq2seq_client.errors import Seq2SeqError
from seq2seq_client.render import (
    RenderError,
    attention_table,
    save_attention_png,
    token_scores_table,
)
from seq2seq_client.sync import Seq2SeqClient
from seq2seq_client.tasks import TASKS, TaskSpec
from seq2seq_client.types import AnswerResult, DecodeOptions, GenerateResult, TokenEvent

PROG = "seq2seq"
EXIT_RPC_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

Result = GenerateResult | AnswerResult


class UsageError(Exception):
    """Bad arguments or unreadable local input: exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of usage + message
        raise UsageError(f"{message} (see {self.prog} --help)")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {value}")
    return value


def _penalty(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0: {text}")
    return value


def add_security_arguments(group: Any) -> None:
    """--tls, --ca, --cert, --key, --server-name and --token (read back by `tls_config`)."""
    group.add_argument("--tls", action="store_true", help="use TLS with the system's CA roots")
    group.add_argument("--ca", type=Path, help="PEM CA file the server certificate chains to")
    group.add_argument("--cert", type=Path, help="PEM client certificate (mutual TLS)")
    group.add_argument("--key", type=Path, help="PEM private key of --cert")
    group.add_argument("--server-name", help="name to check the server certificate against")
    group.add_argument(
        "--token",
        default=os.environ.get("SEQ2SEQ_TOKEN"),
        help="bearer token sent as 'authorization: Bearer ...' (default: $SEQ2SEQ_TOKEN)",
    )


# One flag per DecodeOptions field (so per DecodingOptions field): its name with dashes,
# unless it had another spelling before the flags were derived; its type from the field's.
FLAG_NAMES = {
    "target_prefix": "--prefix",
    "protected_terms": "--keep",
    "return_scores": "--scores",
    "return_attention": "--attention",
}
FLAG_HELP = {
    "model": "model name (default: the task's model)",
    "model_version": "0 = the newest",
    "beam_size": "0 or 1 = greedy (default: --n-best's)",
    "n_best": "hypotheses to return, from a beam this wide",
    "max_output_tokens": "0 = the model's",
    "length_penalty": "beam scores divided by ((5 + length) / 6) ** PENALTY (GNMT); 0 = none",
    "return_attention": "print the attention table after each result",
    "return_scores": "print each output token's log-probability",
    "min_output_tokens": "suppress the end before this many",
    "temperature": "sample with this temperature (> 0)",
    "top_k": "sample among the k likeliest",
    "top_p": "nucleus sampling, in (0, 1]",
    "seed": "same seed, same sample",
    "extractive": "answers are spans of the context (default: the model's)",
    "target_prefix": "the output starts with this text",
    "protected_terms": "keep TERM verbatim",
    "glossary": "SOURCE=TARGET: the output must hold TARGET where the text has SOURCE",
}
FLAG_TYPES: dict[str, Callable[[str], Any]] = {"length_penalty": _penalty}


def _pair(text: str) -> tuple[str, str]:
    source, equals, target = text.partition("=")
    if not equals:
        raise argparse.ArgumentTypeError(f"expected SOURCE=TARGET, not {text!r}")
    return source, target


def add_option_flags(group: Any) -> None:
    """A flag for every decoding option, read back by `decoding_options`."""
    hints = typing.get_type_hints(DecodeOptions)
    for field in dataclasses.fields(DecodeOptions):
        hint = hints[field.name]
        flag = FLAG_NAMES.get(field.name, "--" + field.name.replace("_", "-"))
        kwargs: dict[str, Any] = {
            "dest": field.name,
            "help": FLAG_HELP.get(field.name, f"DecodingOptions.{field.name}"),
        }
        kinds = set(typing.get_args(hint)) - {type(None)} or {hint}
        if hint is bool:
            kwargs.update(action="store_true")
        elif kinds == {bool}:
            kwargs.update(action=argparse.BooleanOptionalAction, default=None)
        elif typing.get_origin(hint) is tuple:
            pairs = typing.get_origin(typing.get_args(hint)[0]) is tuple
            kwargs.update(action="append", default=[], type=_pair if pairs else str)
            kwargs["metavar"] = "SOURCE=TARGET" if pairs else "TERM"
        else:
            (kind,) = kinds
            kwargs.update(
                type=FLAG_TYPES.get(field.name, _count if kind is int else kind),
                default=field.default,
            )
        group.add_argument(flag, **kwargs)


def add_task_command(commands: Any, spec: TaskSpec, parents: list[argparse.ArgumentParser]) -> None:
    """A task's subcommand from the task table: its first text field as the argument, the
    others as files (--FIELD FILE|-), or many requests from --input."""
    first, *others = spec.text_fields
    sub = commands.add_parser(spec.name, parents=parents, help=spec.description)
    sub.add_argument(first, nargs="?", metavar=first.upper(), help=f"the {first} (or --input)")
    for name in others:
        sub.add_argument(f"--{name}", metavar="FILE|-", help=f"file holding the {name}")
    sub.add_argument(
        "--input",
        metavar="FILE|-",
        help="many texts, one per line"
        if not others
        else "JSON lines {"
        + ", ".join(f'"{n}": ...' for n in spec.text_fields)
        + "}; "
        + ", ".join(f"{n} defaults to --{n}" for n in others),
    )


def build_parser() -> argparse.ArgumentParser:
    connection = _Parser(add_help=False)
    group = connection.add_argument_group("connection")
    group.add_argument(
        "--target",
        default=os.environ.get("SEQ2SEQ_TARGET", DEFAULT_TARGET),
        help="server address: host:port or dns:///name:port "
        "(default: $SEQ2SEQ_TARGET or %(default)s)",
    )
    group.add_argument(
        "--timeout", type=_seconds, default=30.0, help="deadline per call, seconds (%(default)s)"
    )
    add_security_arguments(group)
    group.add_argument("--json", action="store_true", help="machine-readable output (JSON lines)")

    decoding = _Parser(add_help=False)
    group = decoding.add_argument_group("decoding")
    add_option_flags(group)
    group.add_argument("--stream", action="store_true", help="print tokens as they arrive")
    group.add_argument(
        "--attention-png", type=Path, metavar="FILE", help="write the attention heat map (PNG)"
    )

    parser = _Parser(prog=PROG, description="Call the seq2seq gRPC service.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub = commands.add_parser("translate", parents=[connection, decoding], help="translate text")
    sub.add_argument("text", nargs="?", help="the text (or --input, or --file)")
    sub.add_argument("--to", required=True, dest="target_language", help="e.g. fr")
    sub.add_argument(
        "--from", default="", dest="source_language", help="default: en; auto = detect it"
    )
    sub.add_argument("--input", metavar="FILE|-", help="many texts, one per line")
    sub.add_argument(
        "--file",
        metavar="FILE|-",
        help="one document, translated with its lines, paragraphs and lists kept",
    )
    sub.add_argument(
        "--html", action="store_true", help="the text is HTML: only text nodes are translated"
    )

    for spec in TASKS.values():
        if spec.name != "translate":  # translate: documents, many texts, languages (above)
            add_task_command(commands, spec, parents=[connection, decoding])

    sub = commands.add_parser("detect", parents=[connection], help="detect the language of a text")
    sub.add_argument("text", nargs="?", help="the text (or --file)")
    sub.add_argument("--file", metavar="FILE|-", help="read the text from a file")
    sub.add_argument("--top", type=_count, default=3, help="languages to rank (%(default)s)")

    sub = commands.add_parser("models", parents=[connection], help="list the models")
    sub.add_argument("--task", default="", choices=["", *TASKS])
    return parser


# ---------------------------------------------------------------- inputs


def _read_text(name: str, what: str) -> str:
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"cannot read {what} {name!r}: {reason}") from None


def _texts(args: argparse.Namespace) -> list[str]:
    """translate's texts: TEXT, a --file document, or --input lines."""
    if args.file is not None:
        if args.text is not None or args.input is not None:
            raise UsageError("give a TEXT, --input or --file, not two of them")
        return [_read_text(args.file, "file")]
    if args.input is not None and args.text is not None:
        raise UsageError("give a TEXT or --input, not both")
    if args.input is None:
        if args.text is None:
            raise UsageError("give a TEXT argument or --input FILE")
        return [args.text]
    lines = [line for line in _read_text(args.input, "input file").splitlines() if line.strip()]
    if not lines:
        raise UsageError(f"input file {args.input!r} holds no text")
    return lines


def _task_inputs(spec: TaskSpec, args: argparse.Namespace) -> list[dict[str, str]]:
    """A task's requests: its argument and files, or --input (lines for a task of one text
    field, JSON lines otherwise, missing fields taken from the files)."""
    first, *others = spec.text_fields
    if args.input is not None and getattr(args, first) is not None:
        raise UsageError(f"give a {first.upper()} or --input, not both")
    for name in others:
        if args.input == "-" and getattr(args, name) == "-":
            raise UsageError(f"--input and --{name} cannot both read standard input")
    files = {
        name: _read_text(getattr(args, name), f"{name} file")
        for name in others
        if getattr(args, name) is not None
    }
    if args.input is None:
        if getattr(args, first) is None:
            raise UsageError(f"give a {first.upper()} argument or --input FILE")
        missing = [name for name in others if name not in files]
        if missing:
            raise UsageError(f"{spec.name} needs --{missing[0]} FILE (or - for standard input)")
        return [{first: getattr(args, first), **files}]
    records = []
    for number, line in enumerate(_read_text(args.input, "input file").splitlines(), 1):
        if line.strip():
            records.append(_record(spec, line, files, f"{args.input}:{number}"))
    if not records:
        raise UsageError(f"input file {args.input!r} holds no {first}")
    return records


def _record(spec: TaskSpec, line: str, files: dict[str, str], where: str) -> dict[str, str]:
    """One --input line: the text itself, or a JSON object of the task's fields."""
    first, *others = spec.text_fields
    if not others:
        return {first: line}
    try:
        record = json.loads(line)
        fields = {name: record.get(name, files.get(name)) for name in spec.text_fields}
        fields[first] = record[first]
    except (ValueError, KeyError, TypeError, AttributeError):
        names = " and ".join(f"'{name}'" for name in spec.text_fields)
        raise UsageError(f"{where}: expected a JSON object with {names}") from None
    for name, value in fields.items():
        if not isinstance(value, str):
            raise UsageError(f"{where}: no '{name}' string (nor --{name})")
    return fields


def tls_config(args: argparse.Namespace) -> TlsConfig | None:
    """The TlsConfig that add_security_arguments' flags ask for; UsageError on bad files."""
    if not (args.tls or args.ca or args.cert or args.key or args.server_name):
        return None
    if (args.cert is None) != (args.key is None):
        raise UsageError("--cert and --key go together")
    for flag, path, marker in (
        ("--ca", args.ca, b"-----BEGIN CERTIFICATE-----"),
        ("--cert", args.cert, b"-----BEGIN CERTIFICATE-----"),
        ("--key", args.key, b"PRIVATE KEY-----"),
    ):
        if path is None:
            continue
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {flag} file {str(path)!r}: {exc.strerror}") from None
        if marker not in content:
            raise UsageError(f"{flag} file {str(path)!r} is not PEM (no {marker.decode()})")
    return TlsConfig(
        root_ca_file=args.ca, cert_file=args.cert, key_file=args.key, server_name=args.server_name
    )


def decoding_options(args: argparse.Namespace) -> DecodeOptions:
    """The DecodeOptions the flags of `add_option_flags` ask for."""
    values = {field.name: getattr(args, field.name) for field in dataclasses.fields(DecodeOptions)}
    values = {name: tuple(v) if isinstance(v, list) else v for name, v in values.items()}
    # --n-best 3 alone asks for a beam of 3: the server needs beam_size >= n_best.
    values["beam_size"] = args.beam_size or (args.n_best if args.n_best > 1 else 0)
    values["return_attention"] = args.return_attention or args.attention_png is not None
    return DecodeOptions(**values)


# ---------------------------------------------------------------- outputs


def _json_line(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, ensure_ascii=False) + "\n")
    out.flush()


def _text_of(result: Result) -> str:
    if isinstance(result, AnswerResult):
        return result.answer if result.answerable else "(not in the context)"
    return result.text


def _print_result(result: Result, args: argparse.Namespace, out: TextIO) -> None:
    if args.json:
        _json_line(dataclasses.asdict(result), out)
        return
    if isinstance(result, GenerateResult) and len(result.hypotheses) > 1:
        for rank, hypothesis in enumerate(result.hypotheses, 1):
            out.write(f"{rank}. {hypothesis.text}  (score {hypothesis.score:.3f})\n")
            if args.return_scores:
                out.write(token_scores_table(hypothesis) + "\n")
    else:
        text = _text_of(result)  # a document keeps its own last line break
        out.write(text if text.endswith("\n") else text + "\n")
        if args.return_scores and result.hypotheses:
            out.write(token_scores_table(result.hypotheses[0]) + "\n")
    out.flush()


def _show_attention(
    result: Result, args: argparse.Namespace, index: int, total: int, out: TextIO
) -> None:
    best = result.hypotheses[0] if result.hypotheses else None
    if best is None or best.attention is None:
        return
    if args.return_attention and not args.json:
        out.write(attention_table(result.source_tokens, best.target_tokens, best.attention))
        out.write("\n\n")
        out.flush()
    if args.attention_png is not None:
        path: Path = args.attention_png
        if total > 1:
            path = path.with_name(f"{path.stem}-{index + 1}{path.suffix or '.png'}")
        title = f"{result.model.name} v{result.model.version}"
        try:
            save_attention_png(
                path, result.source_tokens, best.target_tokens, best.attention, title=title
            )
        except OSError as exc:
            raise UsageError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None


def _consume_stream(events: Iterable[TokenEvent | Result], args: argparse.Namespace) -> Result:
    out = sys.stdout
    shown = ""
    for event in events:
        if isinstance(event, TokenEvent):
            if args.json:
                _json_line({"token": dataclasses.asdict(event)}, out)
            elif event.text.startswith(shown):
                out.write(event.text[len(shown) :])
                out.flush()
                shown = event.text
            continue
        if args.json:
            _json_line({"result": dataclasses.asdict(event)}, out)
        else:
            final = _text_of(event)
            out.write("\n" if final.strip() == shown.strip() else f"\n{final}\n")
            out.flush()
        return event
    raise Seq2SeqError(grpc.StatusCode.UNKNOWN, "the stream ended without a final result")


def _calls(
    client: Seq2SeqClient, args: argparse.Namespace, inputs: Sequence[dict[str, str]]
) -> Iterator[Result]:
    """One result per input (a task's fields by name), printed as it comes."""
    options = decoding_options(args)
    for fields in inputs:
        if args.command != "translate":
            if args.stream:
                stream = client.generate_stream(args.command, fields, options=options)
                yield _consume_stream(stream, args)
            else:
                yield _printed(client.generate(args.command, fields, options=options), args)
            continue
        kwargs: dict[str, Any] = {"source_language": args.source_language, "options": options}
        if args.stream:
            yield _consume_stream(
                client.translate_stream(fields["text"], args.target_language, **kwargs), args
            )
            continue
        kwargs["text_format"] = "html" if args.html else "text"
        result = client.translate(fields["text"], args.target_language, **kwargs)
        if result.detected_language is not None and not args.json:
            detected = result.detected_language
            print(f"detected {detected.language} ({detected.confidence:.2f})", file=sys.stderr)
        yield _printed(result, args)


def _printed(result: Result, args: argparse.Namespace) -> Result:
    _print_result(result, args, sys.stdout)
    return result


def _detect_text(args: argparse.Namespace) -> str:
    if (args.text is None) == (args.file is None):
        raise UsageError("give a TEXT argument or --file FILE")
    return args.text if args.text is not None else _read_text(args.file, "file")


def _print_detection(client: Seq2SeqClient, args: argparse.Namespace, text: str) -> None:
    ranked = client.detect(text, top=args.top)
    if args.json:
        _json_line([dataclasses.asdict(score) for score in ranked], sys.stdout)
        return
    for score in ranked:
        print(f"{score.language}\t{score.confidence:.4f}")


def _print_models(client: Seq2SeqClient, args: argparse.Namespace) -> None:
    models = client.list_models(args.task)
    if args.json:
        _json_line([dataclasses.asdict(m) for m in models], sys.stdout)
        return
    rows = [["MODEL", "VERSION", "TASK", "LANGUAGES", "ARCHITECTURE", "PROVIDER", "EVALUATION"]]
    rows[0].append("FOR")
    for m in models:
        languages = f"{m.source_language}->{m.target_language}" if m.target_language else ""
        figures = " ".join(f"{k}={v:.3g}" for k, v in sorted(m.evaluation.items()))
        version = f"{m.version}{' (default)' if m.is_default_version else ''}"
        architecture = f"{m.architecture}/{m.attention} {m.precision}"
        rows.append([m.name, version, m.task, languages, architecture, m.provider, figures])
        rows[-1].append(m.description)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def run(args: argparse.Namespace) -> int:
    tls = tls_config(args)
    inputs: list[dict[str, str]] = []
    if args.command == "detect":
        inputs = [{"text": _detect_text(args)}]
    elif args.command == "translate":
        inputs = [{"text": text} for text in _texts(args)]
    elif args.command in TASKS:
        inputs = _task_inputs(TASKS[args.command], args)
    try:
        client = Seq2SeqClient(args.target, tls=tls, token=args.token, timeout=args.timeout)
    except (OSError, ValueError) as exc:  # unreadable or malformed TLS files
        raise UsageError(f"cannot set up TLS: {exc}") from None
    with client:
        if args.command == "detect":
            _print_detection(client, args, inputs[0]["text"])
            return 0
        if args.command == "models":
            _print_models(client, args)
            return 0
        for index, result in enumerate(_calls(client, args, inputs)):
            _show_attention(result, args, index, len(inputs), sys.stdout)
    return 0


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every failure becomes one stderr line and an exit status."""
    try:
        return run(build_parser().parse_args(argv))
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except RenderError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except Seq2SeqError as exc:
        return _fail(f"{exc.code.name}: {exc.details}", EXIT_RPC_ERROR)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: still one line, never a traceback
        return _fail(f"unexpected {type(exc).__name__}: {exc}", EXIT_RPC_ERROR)
