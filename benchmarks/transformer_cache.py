"""The Transformer member's caches: the old fixed-cache export vs the new one, same weights.

    python -m benchmarks.transformer_cache OUT_DIR [--rounds 3] \
        [--checkpoint best.pt --tokenizer tokenizer.json]

One checkpoint of the small Transformer shape (d_model 256, 2+2 layers, 4 heads, ffn 1024,
vocab 8k; random weights unless --checkpoint names a trained one) is exported twice:
- old: by the export code of `--old-rev` (main before the change; taken from git history
  into a temporary folder and run in a subprocess): a fixed (B, layers, max_target_length,
  H) self-attention cache rewritten at every step, cross-attention keys/values recomputed
  from memory at every step, states with a batch axis only (schema 1);
- new: by this checkout: cross-attention keys/values computed once by the encoder (a state
  with a source axis), a self-attention cache that grows one slot per step (target axis).
Both bundles are decoded by this checkout's engine through the offline API on the held-out
en-fr sources, at greedy and beam 4, 32 requests and 1 request at a time (rows = requests x
beam), every output forced to `--output-tokens` tokens (min = max output tokens). Rounds
interleave old and new; each figure is the median over the rounds, and each case also
reports the median of the per-round ratios (old and new back to back). Prints a table and writes
OUT_DIR/transformer_cache.json, with the engine's own split of each run (decoder ms per
step, onnxruntime's share of the wall time).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmarks.offline import heldout_sources
from benchmarks.report import environment, print_table, write_json
from benchmarks.suite import offline_with_timers
from model_export.base import EncoderDecoder, count_parameters
from model_export.config import ModelConfig
from model_export.export import export_onnx
from model_export.families import build_model
from model_export.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, save_tokenizer, train_tokenizer
from model_export.train import load_checkpoint, save_checkpoint
from service.bundle import TOKENIZER_FILE, StateTensor, schema_version_for, write_manifest
from service.engine.repository import LoadedBundle, load_bundle
from service.engine.runtime import RuntimeOptions

ROOT = Path(__file__).resolve().parents[1]
OLD_REV = "cf9f5f1b0d4d214dd234ebed62e62caa2b430e25"  # main before the caches changed
DEBIAN = ROOT / "tests" / "fixtures" / "debian"
SHAPE = {  # the small shape of the CTranslate2 anchors (3.8 M parameters)
    "architecture": "transformer",
    "embedding_size": 16,
    "hidden_size": 256,
    "layers": 2,
    "heads": 4,
    "ffn_size": 1024,
    "dropout": 0.0,
}
CASES = (  # (label, beam size, requests decoded together)
    ("greedy bs32", 1, 32),
    ("beam4 bs32", 4, 32),
    ("greedy bs1", 1, 1),
    ("beam4 bs1", 4, 1),
)

# Run by the old revision's code (PYTHONPATH = its folder): export one checkpoint.
_OLD_EXPORT = """
import json, sys
from pathlib import Path
import torch
import model_export
from model_export.config import ModelConfig
from model_export.export import export_onnx
from model_export.model import build_model
source = Path(model_export.__file__).resolve()
assert source.is_relative_to(Path(sys.argv[3]).resolve()), f"imported {source}"
saved = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
known = ModelConfig.model_fields  # fields added since (at their defaults) are dropped
config = ModelConfig(**{k: v for k, v in saved["model_config"].items() if k in known})
model = build_model(config)
model.load_state_dict(saved["state_dict"])
model.eval()
export_onnx(model, Path(sys.argv[2]))
print(json.dumps(list(model.state_names())))
"""


@dataclass(frozen=True)
class Settings:
    rounds: int = 3  # interleaved old/new rounds per case
    threads: int = 2  # onnxruntime intra-op threads
    output_tokens: int = 32  # every output forced to this length
    max_target_length: int = 96  # the old cache's fixed size (the translate default)
    batched_requests: int = 64  # requests per run of a bs32 case
    single_requests: int = 8  # requests per run of a bs1 case
    seed: int = 0  # the random checkpoint's
    old_rev: str = OLD_REV  # git revision whose export code writes the old bundle
    checkpoint: Path | None = None  # a trained best.pt (with its tokenizer); None: random
    tokenizer: Path | None = None
    vocab_size: int = 8000  # the fitted tokenizer's, for a random checkpoint
    shape: Mapping[str, object] = field(default_factory=lambda: dict(SHAPE))


def small_model(settings: Settings, vocab_size: int) -> EncoderDecoder:
    torch.manual_seed(settings.seed)
    config = ModelConfig(
        vocab_size=vocab_size,
        max_source_length=96,
        max_target_length=settings.max_target_length,
        **settings.shape,  # type: ignore[arg-type]
    )
    return build_model(config).eval()


def export_old(checkpoint: Path, out_dir: Path, rev: str) -> tuple[str, ...]:
    """Export `checkpoint` with the code of `rev` -> its state names (batch axis 0 each)."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "model_export", "service"],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"transformer_cache: cannot read revision {rev} from git: {exc}") from exc
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        result = subprocess.run(
            [sys.executable, "-c", _OLD_EXPORT, str(checkpoint), str(out_dir), tmp],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": tmp},
            cwd=tmp,  # `-c` puts the working folder first on the path
            check=False,
        )
    if result.returncode:
        raise SystemExit(f"transformer_cache: the old export failed: {result.stderr[-2000:]}")
    return tuple(json.loads(result.stdout.strip().splitlines()[-1]))


def write_bundle(
    bundle_dir: Path, model: EncoderDecoder, states: tuple[StateTensor, ...], tokenizer: Path
) -> None:
    """A complete bundle around graphs already in `bundle_dir`."""
    cfg = model.config
    shutil.copy2(tokenizer, bundle_dir / TOKENIZER_FILE)
    write_manifest(
        bundle_dir,
        {
            "schema_version": schema_version_for(states),
            "name": bundle_dir.parent.name,
            "version": int(bundle_dir.name),
            "task": "translate",
            "languages": {"source": "en", "target": "fr"},
            "architecture": "transformer",
            "attention": {"kind": "soft", "scope": "global", "score": "scaled_dot"},
            "special_tokens": {
                "pad_id": PAD_ID,
                "bos_id": BOS_ID,
                "eos_id": EOS_ID,
                "unk_id": UNK_ID,
            },
            "vocab_size": cfg.vocab_size,
            "hidden_size": cfg.hidden_size,
            "max_source_length": cfg.max_source_length,
            "max_target_length": cfg.max_target_length,
            "states": [s.model_dump(exclude_none=True) for s in states],
        },
    )


def make_bundles(work: Path, settings: Settings) -> dict[str, Path]:
    """The old and the new bundle of one checkpoint (random: with an 8k BPE tokenizer fitted
    on the Debian fixtures; trained: with its own tokenizer)."""
    checkpoint, tokenizer = settings.checkpoint, settings.tokenizer
    if tokenizer is None:
        texts = [
            line
            for path in sorted(DEBIAN.glob("*_Translation-*"))
            for line in path.open(encoding="utf-8")
        ]
        tokenizer = work / TOKENIZER_FILE
        save_tokenizer(train_tokenizer(texts, vocab_size=settings.vocab_size), tokenizer)
    if checkpoint is None:
        vocab = json.loads(tokenizer.read_text(encoding="utf-8"))["model"]["vocab"]
        checkpoint = save_checkpoint(small_model(settings, len(vocab)), work / "ckpt")
    model = load_checkpoint(checkpoint)
    dirs = {
        "old": work / "models" / "transformer-old" / "1",
        "new": work / "models" / "transformer-new" / "1",
    }
    for folder in dirs.values():
        folder.mkdir(parents=True)
    old_states = export_old(checkpoint, dirs["old"], settings.old_rev)
    write_bundle(
        dirs["old"], model, tuple(StateTensor(name=s, batch_axis=0) for s in old_states), tokenizer
    )
    export_onnx(model, dirs["new"])
    write_bundle(dirs["new"], model, model.state_specs(), tokenizer)
    print(f"checkpoint {checkpoint}: {count_parameters(model):,} parameters", flush=True)
    return dirs


def measure(
    bundles: dict[str, LoadedBundle],
    sources: list[str],
    *,
    rounds: int,
    output_tokens: int,
    batched_requests: int,
    single_requests: int,
) -> list[dict[str, Any]]:
    """Every case, old and new interleaved (the order alternates per round)."""
    forced = {"min_output_tokens": output_tokens, "max_output_tokens": output_tokens}
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for _, beam, batch in CASES:  # warm-up: first-run allocations are not measured
        for bundle in bundles.values():
            offline_with_timers(
                bundle, sources, batch_size=batch * beam, requests=batch, beam_size=beam, **forced
            )
    for round_index in range(rounds):
        order = list(bundles) if round_index % 2 == 0 else list(reversed(bundles))
        for case, beam, batch in CASES:
            requests = batched_requests if batch > 1 else single_requests
            for which in order:
                run = offline_with_timers(
                    bundles[which],
                    sources,
                    batch_size=batch * beam,
                    requests=requests,
                    beam_size=beam,
                    **forced,
                )
                if run["output_tokens"] != requests * output_tokens:
                    raise SystemExit(f"{case} {which}: {run['output_tokens']} tokens, not forced")
                runs.setdefault((case, which), []).append(run)
                print(
                    f"round {round_index + 1} {case:12} {which}: {run['tokens_per_second']} tok/s",
                    flush=True,
                )
    rows = []
    for case, beam, batch in CASES:
        row: dict[str, Any] = {"case": case, "beam_size": beam, "requests_together": batch}
        for which in bundles:
            group = runs[(case, which)]
            row[which] = {
                "tokens_per_second": round(
                    statistics.median(r["tokens_per_second"] for r in group), 1
                ),
                "decoder_ms_per_step": round(
                    statistics.median(r["engine"]["decoder_ms_per_step"] for r in group), 3
                ),
                "wall_ms_per_step": round(
                    statistics.median(r["engine"]["wall_ms_per_step"] for r in group), 3
                ),
                "onnxruntime_share_of_wall": round(
                    statistics.median(r["engine"]["onnxruntime_share_of_wall"] for r in group), 3
                ),
                "runs": [r["tokens_per_second"] for r in group],
            }
        row["speedup"] = round(row["new"]["tokens_per_second"] / row["old"]["tokens_per_second"], 2)
        # each round's own ratio (old and new ran back to back), robust to the machine's
        # load drifting between rounds
        paired = [
            new["tokens_per_second"] / old["tokens_per_second"]
            for old, new in zip(runs[(case, "old")], runs[(case, "new")], strict=True)
        ]
        row["speedup_per_round"] = [round(r, 2) for r in paired]
        row["speedup_median_of_rounds"] = round(statistics.median(paired), 2)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--checkpoint", type=Path, help="a trained best.pt of the small shape")
    parser.add_argument("--tokenizer", type=Path, help="with --checkpoint: its tokenizer.json")
    parser.add_argument("--old-rev", default=OLD_REV, help="git revision of the old export")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    parser.add_argument("--output-tokens", type=int, default=32, help="forced output length")
    parser.add_argument("--max-target-length", type=int, default=96, help="the old cache's size")
    parser.add_argument("--batched-requests", type=int, default=64, help="per bs32 run")
    parser.add_argument("--single-requests", type=int, default=8, help="per bs1 run")
    parser.add_argument("--seed", type=int, default=0, help="the random checkpoint's")
    args = parser.parse_args(argv)
    if args.output_tokens > args.max_target_length:
        parser.error("--output-tokens must not exceed --max-target-length")
    if (args.checkpoint is None) != (args.tokenizer is None):
        parser.error("--checkpoint and --tokenizer go together")
    run(
        args.out_dir,
        Settings(**{k: v for k, v in vars(args).items() if k != "out_dir"}),
    )
    return 0


def run(out_dir: Path, settings: Settings) -> dict[str, Any]:
    """Build both bundles, measure, print the table, write OUT_DIR/transformer_cache.json."""
    with tempfile.TemporaryDirectory() as tmp:
        dirs = make_bundles(Path(tmp), settings)
        options = RuntimeOptions(providers=("cpu",), intra_op_threads=settings.threads)
        bundles = {which: load_bundle(folder, options) for which, folder in dirs.items()}
        compared = {
            which: {
                "schema_version": b.manifest.schema_version,
                "states": [s.model_dump(exclude_none=True) for s in b.manifest.states],
            }
            for which, b in bundles.items()
        }
        rows = measure(
            bundles,
            heldout_sources("translate", "translate-en-fr"),
            rounds=settings.rounds,
            output_tokens=settings.output_tokens,
            batched_requests=settings.batched_requests,
            single_requests=settings.single_requests,
        )
    print_table(
        ["case", "old tok/s", "new tok/s", "speedup", "per round", "old ms/step", "new ms/step"],
        [
            [
                r["case"],
                r["old"]["tokens_per_second"],
                r["new"]["tokens_per_second"],
                f"{r['speedup']}x",
                f"{r['speedup_median_of_rounds']}x",
                r["old"]["decoder_ms_per_step"],
                r["new"]["decoder_ms_per_step"],
            ]
            for r in rows
        ],
    )
    described = asdict(settings) | {
        "checkpoint": str(settings.checkpoint or "random"),
        "tokenizer": str(settings.tokenizer or "BPE fitted on tests/fixtures/debian"),
        "shape": dict(settings.shape),
    }
    report = {
        "environment": environment(),
        "settings": described,
        "bundles": compared,
        "rows": rows,
    }
    write_json(out_dir / "transformer_cache.json", report)
    return report


if __name__ == "__main__":
    sys.exit(main())
