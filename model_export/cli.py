"""`seq2seq-export build ...` (also `python -m model_export build ...`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_export.export import PINNED_EXPORTER
from model_export.families import FAMILIES


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
    b.add_argument("--architecture", default="rnn", choices=list(FAMILIES), help="model family")
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
    b.add_argument(
        "--copy-attention",
        action="store_true",
        help="rnn: pointer-generator; the output mixes the vocabulary with the attention "
        "scattered onto the source tokens by a learned gate",
    )
    b.add_argument(
        "--init-state",
        choices=["mean", "final"],
        help="rnn: decoder's first state from the mean memory (default) or the encoder's "
        "final states (forward at the last token, backward at the first)",
    )
    b.add_argument(
        "--split-punctuation",
        action="store_true",
        help="tokenizer: punctuation at word edges becomes its own token ('Doe.' -> 'Doe' '.')",
    )
    b.add_argument("--max-source-length", type=int, help="source tokens incl. EOS (task default)")
    b.add_argument("--layers", type=int, default=2, help="transformer: layers per stack")
    b.add_argument("--heads", type=int, default=4, help="transformer: attention heads")
    b.add_argument("--ffn-size", type=int, default=512, help="transformer: feed-forward width")
    b.add_argument("--max-steps", type=int, default=100_000)
    b.add_argument("--seed", type=int, default=1234)
    b.add_argument("--exporter", default=PINNED_EXPORTER, choices=["torchscript", "dynamo"])
    b.add_argument(
        "--work-dir", type=Path, help="checkpoints (default runs/<repo folder>/<name>/<version>)"
    )
    b.add_argument("--overwrite", action="store_true", help="replace an existing bundle folder")
    b.add_argument(
        "--resume", action="store_true",
        help="the work dir holds a finished training: export, check and score it, no training",
    )  # fmt: skip
    b.add_argument(
        "--continue-training", action="store_true",
        help="the work dir holds a finished training: train --minutes more from its best "
        "weights (same model options), then export, check and score",
    )  # fmt: skip
    b.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    d = sub.add_parser("defaults", help="build the default bundles (model_export/defaults.py)")
    d.add_argument("--data", type=Path, default=Path("data/prepared"), help="prepared data folder")
    d.add_argument("--repo", type=Path, default=Path("models"), help="model repository folder")
    d.add_argument("--version", type=int, default=1)
    d.add_argument("--threads", type=int, default=2)
    d.add_argument("--minutes-scale", type=float, default=1.0, help="scale every time budget")
    d.add_argument("--overwrite", action="store_true", help="replace existing bundle folders")
    e = sub.add_parser("evaluate", help="re-score a bundle on its test records (onnxruntime)")
    e.add_argument("bundle", type=Path, help="bundle folder, e.g. models/translate-en-fr/1")
    e.add_argument("--data", type=Path, default=Path("data/prepared"), help="prepared data folder")
    e.add_argument("--threads", type=int, default=2)
    e.add_argument("--write", action="store_true", help="store the figures in bundle.json")
    v = sub.add_parser("variant", help="an fp16 or int8 copy of an fp32 bundle, re-scored")
    v.add_argument("bundle", type=Path, help="the fp32 source bundle folder")
    v.add_argument("--precision", required=True, choices=["fp16", "int8"])
    v.add_argument("--repo", type=Path, required=True, help="model repository to write into")
    v.add_argument("--version", type=int, required=True, help="the variant's version number")
    v.add_argument("--data", type=Path, default=Path("data/prepared"), help="prepared data folder")
    v.add_argument("--threads", type=int, default=2)
    v.add_argument("--overwrite", action="store_true", help="replace an existing variant")
    a = sub.add_parser("compare-attention", help="the same recipe with vs without attention")
    a.add_argument("with_attention", type=Path, help="bundle folder trained with attention")
    a.add_argument("without_attention", type=Path, help="its twin built with --attention-kind none")
    a.add_argument("--data", type=Path, default=Path("data/prepared"), help="prepared data folder")
    a.add_argument("--out", type=Path, required=True, help="comparison JSON to write")
    a.add_argument("--threads", type=int, default=2)
    a.add_argument("--write", action="store_true", help="record it in the first bundle's json")
    g = sub.add_parser(
        "score", help="test figures through the engine (offline API), extractive on or off"
    )
    g.add_argument("bundles", type=Path, nargs="+", help="bundle folders")
    g.add_argument(
        "--data", type=Path, default=Path("data/prepared"),
        help="a prepared folder, or held-out records from `python -m model_export.data newer`",
    )  # fmt: skip
    g.add_argument("--limit", type=int, default=3000, help="test records at most (random subset)")
    g.add_argument("--seed", type=int, default=1234, help="seed of the subset")
    g.add_argument(
        "--extractive", choices=["on", "off", "default"], default="default",
        help="answer models: every answer a span of the context (default: the model's choice)",
    )  # fmt: skip
    g.add_argument("--threads", type=int, default=2)
    g.add_argument("--out", type=Path, help="write the figures as JSON")
    s_ = sub.add_parser("verify-served", help="re-compute test figures through a running server")
    s_.add_argument("bundles", type=Path, nargs="+", help="bundle folders the server serves")
    s_.add_argument("--target", default="localhost:50051", help="the server's host:port")
    s_.add_argument("--data", type=Path, default=Path("data/prepared"), help="prepared data folder")
    s_.add_argument("--limit", type=int, help="send only the first N test records per bundle")
    s_.add_argument("--tolerance", type=float, default=0.5, help="largest allowed difference")
    s_.add_argument("--out", type=Path, help="write the comparison as JSON")
    v = sub.add_parser(
        "verify-grounded",
        help="held-out questions (trained and unseen phrasings) through a running server; "
        "fails when an answer is not in its context",
    )
    v.add_argument("bundle", type=Path, help="the answer bundle the server serves")
    v.add_argument("--target", default="localhost:50051", help="the server's host:port")
    v.add_argument("--data", type=Path, default=Path("data/newer"), help="prepared data folder")
    v.add_argument("--limit", type=int, default=2000, help="questions asked (and their twins)")
    v.add_argument("--seed", type=int, default=1234, help="which questions: a seeded subset")
    v.add_argument("--out", type=Path, help="write the figures as JSON")
    m = sub.add_parser(
        "train-marian", help="a small MarianMTModel trained with transformers on our data"
    )
    m.add_argument("--data", type=Path, default=Path("data/prepared"), help="prepared data folder")
    m.add_argument("--languages", default="en-fr")
    m.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    m.add_argument("--steps", type=int, default=100_000, help="optimizer steps at most")
    m.add_argument("--minutes", type=float, default=24.0, help="wall-clock budget, minutes")
    m.add_argument("--threads", type=int, default=2)
    r = sub.add_parser(
        "random-marian",
        help="a random-weight MarianMTModel of any shape, its tokenizer fitted on a split",
    )
    r.add_argument("out", type=Path, help="checkpoint folder to write (must not exist)")
    r.add_argument("--data", type=Path, default=Path("data/prepared"), help="prepared data folder")
    r.add_argument("--languages", default="en-de", help="its SentencePiece training split")
    r.add_argument("--vocab-size", type=int, default=4000, help="pieces per SentencePiece model")
    r.add_argument("--d-model", type=int, default=192)
    r.add_argument("--encoder-layers", type=int, default=3)
    r.add_argument("--decoder-layers", type=int, default=1)
    r.add_argument("--heads", type=int, default=6, help="attention heads, both stacks")
    r.add_argument("--ffn-size", type=int, default=640, help="feed-forward width, both stacks")
    r.add_argument("--untied", action="store_true", help="separate embeddings and output layer")
    r.add_argument("--init-std", type=float, default=0.25, help="weight init (0.02: one token)")
    r.add_argument("--seed", type=int, default=0)
    i = sub.add_parser(
        "import",
        help="a local Hugging Face checkpoint (Marian, BART, mBART) or a Marian NMT model "
        "folder (Bergamot, translateLocally, Firefox) -> a bundle",
    )
    i.add_argument(
        "checkpoint", type=Path,
        help="folder written by save_pretrained, or a Marian NMT folder (model*.bin / .npz)",
    )  # fmt: skip
    i.add_argument("--repo", type=Path, required=True, help="model repository to write into")
    i.add_argument("--name", required=True, help="bundle name, e.g. opus-mt-en-fr")
    i.add_argument("--version", type=int, default=1)
    i.add_argument(
        "--task",
        choices=["translate", "summarize", "answer"],
        help="default: by architecture (Marian, mBART: translate; BART: summarize)",
    )
    i.add_argument("--languages", help="translate: e.g. en-fr (default: the tokenizer's)")
    i.add_argument("--max-source-length", type=int, help="tokens (default: the positions)")
    i.add_argument("--max-target-length", type=int, help="tokens (default: the positions)")
    i.add_argument(
        "--texts",
        type=Path,
        help="a text per line, checked against transformers' "
        "tokenizer besides the built-in samples",
    )
    i.add_argument(
        "--data",
        type=Path,
        help="prepared data folder: score the bundle on its "
        "test split (greedy, as the build does) and record it in bundle.json",
    )
    i.add_argument("--threads", type=int, default=2)
    i.add_argument("--exporter", default=PINNED_EXPORTER, choices=["torchscript", "dynamo"])
    i.add_argument("--overwrite", action="store_true", help="replace an existing bundle")
    i.add_argument(
        "--precision", choices=["int8", "fp32"],
        help="Marian NMT folders: int8 (onnxruntime's int8 products on the model's own int8 "
        "weights; the default for intgemm models) or fp32 (dequantized; default for float ones)",
    )  # fmt: skip
    i.add_argument("--description", help="what the model is for (ListModels shows it)")
    vp = sub.add_parser(
        "verify-parity",
        help="an imported bundle through a RUNNING server vs transformers' generate()",
    )
    vp.add_argument("checkpoint", type=Path, help="the Hugging Face folder it was imported from")
    vp.add_argument("bundle", type=Path, help="the bundle folder the server serves")
    vp.add_argument("--target", default="localhost:50051", help="the server's host:port")
    vp.add_argument("--data", type=Path, default=Path("data/prepared"), help="test split source")
    vp.add_argument("--texts", type=Path, help="a text per line instead of the test split")
    vp.add_argument("--count", type=int, default=200, help="texts to send")
    vp.add_argument("--max-tokens", type=int, default=64, help="output cap of every request")
    vp.add_argument("--out", type=Path, help="write the report as JSON")
    return parser


def _json(obj: object) -> str:
    import json

    return json.dumps(obj, indent=2, sort_keys=True)


def _evaluate(args: argparse.Namespace) -> int:
    from model_export.bundle_eval import score_bundle, update_evaluation
    from service.bundle import read_manifest

    scores = score_bundle(args.bundle, args.data, threads=args.threads)
    manifest = read_manifest(args.bundle)
    recorded = manifest.evaluation.metrics if manifest.evaluation else {}
    print(
        _json(
            {
                "recorded": recorded,
                "now": scores.metrics,
                "by_source_length": scores.by_source_length,
            }
        )
    )
    if args.write:
        update_evaluation(
            args.bundle, metrics=scores.metrics, by_source_length=scores.by_source_length
        )
    return 0


def _variant(args: argparse.Namespace) -> int:
    from model_export.precision import make_variant

    manifest = make_variant(
        args.bundle,
        args.repo,
        args.precision,
        data_dir=args.data,
        version=args.version,
        threads=args.threads,
        overwrite=args.overwrite,
    )
    print(_json(manifest.training["variant"]))
    return 0


def _compare_attention(args: argparse.Namespace) -> int:
    from model_export.ablation import compare_attention, record_in_bundle, write_report

    comparison = compare_attention(
        args.with_attention, args.without_attention, args.data, threads=args.threads
    )
    write_report(args.out, comparison)
    if args.write:
        record_in_bundle(args.with_attention, comparison)
    print(
        _json(
            {
                "gain": comparison["gain"],
                "gain_by_source_length": comparison["gain_by_source_length"],
            }
        )
    )
    return 0


def _emit(report: object, out: Path | None) -> None:
    """Print a JSON report, and write it to `out` when given."""
    print(_json(report))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(_json(report) + "\n", encoding="utf-8")


def _verify_served(args: argparse.Namespace) -> int:
    from model_export.served_eval import check_served

    checks = [check_served(args.target, b, args.data, limit=args.limit) for b in args.bundles]
    _emit([c.as_dict() for c in checks], args.out)
    worst = max(c.largest_difference for c in checks)
    if worst > args.tolerance:
        print(f"seq2seq-export: served figures differ by {worst} points", file=sys.stderr)
        return 1
    return 0


def _score(args: argparse.Namespace) -> int:
    from model_export.engine_eval import score_with_engine

    extractive = {"on": True, "off": False, "default": None}[args.extractive]
    reports = [
        score_with_engine(
            bundle,
            args.data,
            limit=args.limit,
            seed=args.seed,
            extractive=extractive,
            threads=args.threads,
        )
        for bundle in args.bundles
    ]
    _emit(reports, args.out)
    return 0


def _verify_grounded(args: argparse.Namespace) -> int:
    from model_export.grounded_check import check_grounded

    report = check_grounded(args.target, args.bundle, args.data, limit=args.limit, seed=args.seed)
    _emit(report, args.out)
    outside = report["answers_outside_context"]
    if outside:
        print(f"seq2seq-export: {len(outside)} answers are not in their context", file=sys.stderr)
        return 1
    return 0


def _import(args: argparse.Namespace) -> int:
    from model_export.importers.importer import import_checkpoint
    from model_export.importers.marian_nmt.folder import looks_like_marian

    texts: tuple[str, ...] = ()
    if args.texts:
        try:
            texts = tuple(t for t in args.texts.read_text(encoding="utf-8").splitlines() if t)
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{args.texts}: cannot read: {exc}") from exc
    common = {
        "repo": args.repo,
        "name": args.name,
        "version": args.version,
        "task": args.task,
        "languages": args.languages,
        "max_source_length": args.max_source_length,
        "max_target_length": args.max_target_length,
        "texts": texts,
        "data_dir": args.data,
        "threads": args.threads,
        "overwrite": args.overwrite,
    }
    if looks_like_marian(args.checkpoint):  # Marian NMT's own folder
        from model_export.importers.marian_nmt.importer import import_marian_folder

        options = {"precision": args.precision, "description": args.description}
        result = import_marian_folder(args.checkpoint, **common, **options)
    elif args.precision or args.description:
        raise ValueError("--precision and --description apply to Marian NMT folders only")
    else:
        result = import_checkpoint(args.checkpoint, **common, exporter=args.exporter)
    print(_json({"bundle": str(result.bundle_dir), "checks": result.checks}))
    return 0


def _train_marian(args: argparse.Namespace) -> int:
    from model_export.hf_marian import MarianRecipe, train_marian

    summary = train_marian(
        args.data,
        args.out,
        languages=args.languages,
        minutes=args.minutes,
        threads=args.threads,
        recipe=MarianRecipe(max_steps=args.steps),
    )
    print(_json({k: v for k, v in summary.items() if k != "history"}))
    return 0


def _random_marian(args: argparse.Namespace) -> int:
    from model_export.importers.synthetic import RandomMarianShape, random_marian

    if args.out.exists() and any(args.out.iterdir()):
        raise ValueError(f"{args.out}: exists and is not empty; give a new folder")
    shape = RandomMarianShape(
        d_model=args.d_model,
        encoder_layers=args.encoder_layers,
        decoder_layers=args.decoder_layers,
        heads=args.heads,
        ffn_size=args.ffn_size,
        tied=not args.untied,
        init_std=args.init_std,
        seed=args.seed,
    )
    if shape.d_model % shape.heads:
        raise ValueError(f"--d-model {shape.d_model} is not a multiple of --heads {shape.heads}")
    summary = random_marian(
        args.data, args.out, languages=args.languages, shape=shape, spm_vocab_size=args.vocab_size
    )
    print(_json(summary))
    return 0


def _verify_parity(args: argparse.Namespace) -> int:
    from model_export import data as prepared
    from model_export import evaluate as ev
    from model_export.bundle_eval import dataset_of
    from model_export.importers.served_parity import check_parity
    from service.bundle import read_manifest

    if args.texts:
        texts = [t for t in args.texts.read_text(encoding="utf-8").splitlines() if t.strip()]
    else:
        manifest = read_manifest(args.bundle)
        records = prepared.load_split(args.data, dataset_of(manifest), "test")
        texts = [ev.source_text(manifest.task, r) for r in records]
    report = check_parity(
        args.target,
        args.checkpoint,
        args.bundle,
        texts,
        max_tokens=args.max_tokens,
        count=args.count,
    )
    print(_json(report.as_dict()))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(_json(report.as_dict()) + "\n", encoding="utf-8")
    if any(report.mismatches.values()):
        print("seq2seq-export: served tokens differ from transformers'", file=sys.stderr)
        return 1
    return 0


_COMMANDS = {
    "train-marian": _train_marian,
    "random-marian": _random_marian,
    "verify-parity": _verify_parity,
    "evaluate": _evaluate,
    "score": _score,
    "import": _import,
    "variant": _variant,
    "compare-attention": _compare_attention,
    "verify-served": _verify_served,
    "verify-grounded": _verify_grounded,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Imported here so that `--help` does not pay for torch.
    from model_export.ablation import AblationError
    from model_export.build import BuildError, build_bundle
    from model_export.data import DataError
    from model_export.importers import ImportCheckpointError
    from model_export.precision import VariantError
    from seq2seq_client.errors import Seq2SeqError
    from service.bundle import BundleError
    from service.errors import ServiceError

    if args.command in _COMMANDS:
        try:
            return _COMMANDS[args.command](args)
        except (
            AblationError,
            BundleError,
            DataError,
            ImportCheckpointError,
            Seq2SeqError,
            ServiceError,
            VariantError,
            ValueError,
        ) as exc:
            # Seq2SeqError: verify-served's server refused or is not there; ServiceError:
            # the engine refused a record (score)
            print(f"seq2seq-export: error: {exc}", file=sys.stderr)
            return 2

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
                "copy_attention": args.copy_attention or None,
                "init_state": args.init_state,
                "max_source_length": args.max_source_length,
            },
            train_overrides={"seed": args.seed, "max_steps": args.max_steps},
            exporter=args.exporter,
            work_dir=args.work_dir,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            split_punctuation=args.split_punctuation,
            resume=args.resume,
            continue_training=args.continue_training,
        )
    except (BuildError, DataError, ValueError) as exc:
        print(f"seq2seq-export: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
