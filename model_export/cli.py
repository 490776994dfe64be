"""`seq2seq-export build ...` (also `python -m model_export build ...`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_export.export import PINNED_EXPORTER


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seq2seq-export", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="tokenizer -> train -> export -> parity -> evaluate -> bundle")
    b.add_argument("--task", required=True, choices=["translate", "summarize", "answer"])
    b.add_argument("--languages", help="translate only, e.g. en-fr")
    b.add_argument("--data", type=Path, default=Path("data/prepared"), help="prepared data folder")
    b.add_argument("--repo", type=Path, default=Path("models"), help="model repository folder")
    b.add_argument("--version", type=int, default=1)
    b.add_argument("--minutes", type=float, default=10.0, help="training time budget, minutes")
    b.add_argument("--threads", type=int, default=2, help="torch and onnxruntime threads")
    b.add_argument("--max-examples", type=int, help="train on a random subset of this size")
    b.add_argument("--max-eval-examples", type=int, help="evaluate on a subset of the test split")
    b.add_argument("--vocab-size", type=int, default=4000)
    b.add_argument("--embedding-size", type=int, default=128)
    b.add_argument("--hidden-size", type=int, default=256)
    b.add_argument(
        "--architecture", default="rnn", choices=["rnn", "transformer"], help="model family"
    )
    b.add_argument("--cell", choices=["gru", "lstm"], help="rnn: recurrent cell (default gru)")
    b.add_argument(
        "--attention-kind",
        default="soft",
        choices=["soft", "hard", "none"],
        help="soft: weights sum to 1 over the source; hard: one source position; none: the "
        "no-attention baseline",
    )
    b.add_argument(
        "--attention-scope",
        default="global",
        choices=["global", "local"],
        help="local: a window of +-D positions around a predicted centre (Luong local-p)",
    )
    b.add_argument("--attention-window", type=int, help="local scope: half-width D")
    b.add_argument(
        "--attention-score",
        choices=["dot", "general", "additive", "cosine", "scaled_dot"],
        help="default: general (rnn), scaled_dot (transformer)",
    )
    b.add_argument("--layers", type=int, default=2, help="transformer: layers per stack")
    b.add_argument("--heads", type=int, default=4, help="transformer: attention heads")
    b.add_argument("--ffn-size", type=int, default=512, help="transformer: feed-forward width")
    b.add_argument("--max-steps", type=int, default=100_000)
    b.add_argument("--seed", type=int, default=1234)
    b.add_argument("--exporter", default=PINNED_EXPORTER, choices=["torchscript", "dynamo"])
    b.add_argument("--work-dir", type=Path, help="checkpoints (default runs/<name>/<version>)")
    b.add_argument("--overwrite", action="store_true", help="replace an existing bundle folder")
    b.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    d = sub.add_parser("defaults", help="build the default bundles (model_export/defaults.py)")
    d.add_argument("--data", type=Path, default=Path("data/prepared"), help="prepared data folder")
    d.add_argument("--repo", type=Path, default=Path("models"), help="model repository folder")
    d.add_argument("--version", type=int, default=1)
    d.add_argument("--threads", type=int, default=2)
    d.add_argument("--minutes-scale", type=float, default=1.0, help="scale every time budget")
    d.add_argument("--overwrite", action="store_true", help="replace existing bundle folders")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Imported here so that `--help` does not pay for torch.
    from model_export.build import BuildError, build_bundle
    from model_export.data import DataError

    if args.command == "defaults":
        from model_export.defaults import build_defaults

        try:
            build_defaults(
                args.data,
                args.repo,
                version=args.version,
                threads=args.threads,
                overwrite=args.overwrite,
                minutes_scale=args.minutes_scale,
            )
        except (BuildError, DataError, ValueError) as exc:
            print(f"seq2seq-export: error: {exc}", file=sys.stderr)
            return 2
        return 0
    try:
        build_bundle(
            task=args.task,
            languages=args.languages,
            data_dir=args.data,
            repo=args.repo,
            version=args.version,
            minutes=args.minutes,
            threads=args.threads,
            max_examples=args.max_examples,
            max_eval_examples=args.max_eval_examples,
            model_overrides={
                "architecture": args.architecture,
                "vocab_size": args.vocab_size,
                "embedding_size": args.embedding_size,
                "hidden_size": args.hidden_size,
                "cell": args.cell,
                "attention_kind": args.attention_kind,
                "attention_scope": args.attention_scope,
                "attention_window": args.attention_window,
                "attention_score": args.attention_score,
                "layers": args.layers,
                "heads": args.heads,
                "ffn_size": args.ffn_size,
            },
            train_overrides={"seed": args.seed, "max_steps": args.max_steps},
            exporter=args.exporter,
            work_dir=args.work_dir,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
    except (BuildError, DataError, ValueError) as exc:
        print(f"seq2seq-export: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
