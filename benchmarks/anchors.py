"""Side by side with the anchors on identical weights: Hugging Face `generate()` (PyTorch),
CTranslate2 fp32 and int8 (converted from the same folder by its own converter), our
offline engine (fp32 and int8 bundles imported from the same folder) and our server over
gRPC.

    python -m benchmarks.anchors OUT_DIR [--shape opus|trained] [--checkpoint DIR]

Optimum's ONNX Runtime seq2seq model joins with `--optimum-overlay DIR` (it needs
transformers < 4.58, kept in DIR and used by a worker process: `anchors_optimum.py`).

Shapes: `opus` is OPUS-MT's (d_model 512, 6+6 layers, 8 heads, ffn 2048, vocabulary 58,101)
with random weights, built here; `trained` is a checkpoint folder (`--checkpoint`, e.g. the
one `seq2seq-export train-marian` writes). Every engine decodes the same held-out sources
(token ids from the checkpoint's own tokenizer) with output lengths forced equal
(`--tokens`, each engine's own minimum-length option plus the cap: HF `min_new_tokens`,
CTranslate2 `min_decoding_length`, ours `min_output_tokens`), greedy and beam 4, at batch 1
(sources one after another) and batch 32 (32 sources decoded together), 2 threads each,
in interleaved rounds; the medians, output tokens per second and the target ratios are
printed and written to OUT_DIR/anchors_<shape>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
HELDOUT = REPO_ROOT / "tests" / "fixtures" / "heldout"
CONFIGS = (("greedy", 1, 1), ("greedy", 1, 32), ("beam4", 4, 1), ("beam4", 4, 32))
TARGETS = {  # ratio name -> (numerator, denominator, target), at batch 32
    "offline_fp32 / ct2_fp32": ("ours_offline_fp32", "ct2_fp32", 1.5),
    "offline_int8 / ct2_int8": ("ours_offline_int8", "ct2_int8", 1.0),
    "server / offline": ("ours_server_fp32", "ours_offline_fp32", 0.8),
    "offline_fp32 / hf": ("ours_offline_fp32", "hf_generate", 3.0),
}


def opus_checkpoint(folder: Path) -> Path:
    """OPUS-MT's shape with random weights and a Marian tokenizer whose vocab.json has
    58,101 entries (SentencePiece pieces trained on the fixture text, then filler pieces)."""
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    from model_export.hf_marian import MarianRecipe, write_tokenizer

    if (folder / "config.json").is_file():
        return folder
    records = [r for name in ("translate-en-fr", "summarize") for r in heldout(name)]
    write_tokenizer(
        folder,
        [r["source"] for r in records],
        [r["target"] for r in records],
        MarianRecipe(spm_vocab_size=500),
        "en-fr",
    )
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    vocab.pop("<pad>")
    while len(vocab) < 58100:
        vocab[f"\u2581filler{len(vocab)}"] = len(vocab)
    vocab["<pad>"] = 58100
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    for stale in ("tokenizer_config.json", "special_tokens_map.json"):  # the old <pad> id
        (folder / stale).unlink(missing_ok=True)
    tokenizer = MarianTokenizer(
        source_spm=str(folder / "source.spm"),
        target_spm=str(folder / "target.spm"),
        vocab=str(folder / "vocab.json"),
        source_lang="en",
        target_lang="fr",
    )
    config = MarianConfig(
        vocab_size=58101,
        d_model=512,
        encoder_layers=6,
        decoder_layers=6,
        encoder_attention_heads=8,
        decoder_attention_heads=8,
        encoder_ffn_dim=2048,
        decoder_ffn_dim=2048,
        max_position_embeddings=512,
        activation_function="swish",
        scale_embedding=True,
        pad_token_id=58100,
        decoder_start_token_id=58100,
        eos_token_id=0,
    )
    torch.manual_seed(0)
    model = MarianMTModel(config)
    model.generation_config.bad_words_ids = [[58100]]
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def prepare(checkpoint: Path, work: Path, threads: int) -> dict[str, Path]:
    """The same weights for every engine: our fp32 and int8 bundles, CTranslate2's fp32 and
    int8 models (each made once per work folder)."""
    from ctranslate2.converters import TransformersConverter

    from model_export.importers.importer import import_checkpoint
    from model_export.precision import convert_files
    from service.bundle import read_manifest, write_manifest

    repo = work / "models"
    fp32 = repo / "anchor" / "1"
    if not (fp32 / "bundle.json").is_file():
        import_checkpoint(checkpoint, repo=repo, name="anchor", languages="en-fr", threads=threads)
    int8 = repo / "anchor" / "2"
    if not (int8 / "bundle.json").is_file():
        int8.mkdir(parents=True, exist_ok=True)
        convert_files(fp32, int8, "int8")
        fields = read_manifest(fp32).model_dump(exclude={"files"})
        write_manifest(int8, fields | {"version": 2, "precision": "int8"})
    paths = {"hf": checkpoint, "bundle_fp32": fp32, "bundle_int8": int8, "repo": repo}
    for kind, quantization in (("ct2_fp32", None), ("ct2_int8", "int8")):
        out = work / kind
        if not (out / "model.bin").is_file():
            TransformersConverter(str(checkpoint)).convert(
                str(out), quantization=quantization, force=True
            )
        paths[kind] = out
    return paths


def heldout(dataset: str) -> list[dict]:
    return [json.loads(line) for line in (HELDOUT / f"{dataset}.jsonl").open(encoding="utf-8")]


Source = tuple[str, list[int]]  # the text (what a client sends) and its ids (EOS last)


def held_out_sources(tokenizer: Any, count: int, limit: int = 64) -> list[Source]:
    """Held-out English texts of 4 to `limit` tokens, with the ids our tokenizer (which is
    transformers', tested) gives them; cycled to `count`."""
    sources = []
    for record in [*heldout("translate-en-fr"), *heldout("summarize")]:
        for text in (record["source"], *record["source"].split(". ")):
            ids = list(tokenizer.encode(text, max_tokens=10**6, field="text").ids)
            if 4 <= len(ids) <= limit:
                sources.append((text, ids))
    return [sources[i % len(sources)] for i in range(count)]


# --- the engines: each decodes `sources` at (beam, batch), forced to `tokens` outputs ---
Runner = Callable[[list[Source], int, int, int], list[int]]  # -> output lengths


def hf_runner(checkpoint: Path, threads: int) -> Runner:
    import torch
    from transformers import AutoModelForSeq2SeqLM

    torch.set_num_threads(threads)
    model = AutoModelForSeq2SeqLM.from_pretrained(checkpoint).eval()
    pad = model.config.pad_token_id

    def run(sources: list[Source], beam: int, batch: int, tokens: int) -> list[int]:
        lengths = []
        for start in range(0, len(sources), batch):
            chunk = [ids for _, ids in sources[start : start + batch]]
            width = max(len(s) for s in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            for row, source in enumerate(chunk):
                ids[row, : len(source)] = torch.tensor(source)
            with torch.inference_mode():
                out = model.generate(
                    input_ids=ids,
                    attention_mask=(ids != pad).long(),
                    num_beams=beam,
                    do_sample=False,
                    min_new_tokens=tokens,
                    max_new_tokens=tokens,
                )
            lengths += [int((row != pad).sum()) for row in out[:, 1:]]  # EOS counted
        return lengths

    return run


def ct2_runner(model_dir: Path, vocab: dict[int, str], threads: int, compute: str) -> Runner:
    import ctranslate2

    translator = ctranslate2.Translator(
        str(model_dir), device="cpu", inter_threads=1, intra_threads=threads, compute_type=compute
    )

    def run(sources: list[Source], beam: int, batch: int, tokens: int) -> list[int]:
        pieces = [[vocab[i] for i in ids[:-1]] for _, ids in sources]  # it appends EOS
        results = translator.translate_batch(
            pieces,
            beam_size=beam,
            max_batch_size=batch,
            min_decoding_length=tokens,
            max_decoding_length=tokens,
        )
        return [len(r.hypotheses[0]) for r in results]

    return run


def ours_runner(bundle: Path, threads: int) -> Runner:
    from service.engine.offline import Seq2SeqEngine

    engines: dict[int, Any] = {}

    def run(sources: list[Source], beam: int, batch: int, tokens: int) -> list[int]:
        rows = batch * beam  # `batch` sources decoded together, each on `beam` rows
        if rows not in engines:
            engines[rows] = Seq2SeqEngine(bundle, intra_op_threads=threads, max_batch_size=rows)
        results = engines[rows].generate_batch(
            [ids for _, ids in sources],
            beam_size=beam,
            min_output_tokens=tokens,
            max_output_tokens=tokens,
        )
        return [len(r.best.token_ids) + (r.best.finish_reason == "eos") for r in results]

    return run


class OptimumWorker:
    """Optimum's ORTModelForSeq2SeqLM in its own process (transformers < 4.58 from an
    overlay folder), fed over a pipe (`anchors_optimum.py`)."""

    def __init__(self, checkpoint: Path, export_dir: Path, threads: int, overlay: Path) -> None:
        env = os.environ | {"PYTHONPATH": f"{overlay.resolve()}{os.pathsep}{REPO_ROOT}"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.anchors_optimum", str(checkpoint),
             str(export_dir), str(threads)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self.process.stdout is not None and self.process.stdin is not None
        if json.loads(self.process.stdout.readline() or "{}").get("ready") is not True:
            raise RuntimeError("the Optimum worker did not start")

    def runner(self) -> Runner:
        def run(sources: list[Source], beam: int, batch: int, tokens: int) -> list[int]:
            assert self.process.stdin is not None and self.process.stdout is not None
            request = {"sources": [ids for _, ids in sources], "beam": beam, "batch": batch}
            self.process.stdin.write(json.dumps(request | {"tokens": tokens}) + "\n")
            self.process.stdin.flush()
            return list(json.loads(self.process.stdout.readline())["lengths"])

        return run

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


class Server:
    """`seq2seq-serve` in its own process over one bundle (2 threads), called over gRPC."""

    def __init__(self, repo: Path, threads: int, rows: int) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        env = os.environ | {
            "SEQ2SEQ_MODEL_REPOSITORY": str(repo),
            "SEQ2SEQ_HOST": "127.0.0.1",
            "SEQ2SEQ_PORT": str(self.port),
            "SEQ2SEQ_METRICS_PORT": "0",
            "SEQ2SEQ_HTTP_HOST": "127.0.0.1",
            "SEQ2SEQ_HTTP_PORT": "0",
            "SEQ2SEQ_PROVIDERS": '["cpu"]',
            "SEQ2SEQ_INTRA_OP_THREADS": str(threads),
            "SEQ2SEQ_MAX_BATCH_SIZE": str(rows),
            "SEQ2SEQ_MAX_BEAM_SIZE": "4",
            "SEQ2SEQ_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO_ROOT),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service"], env=env, stdout=subprocess.DEVNULL
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 300.0) -> None:
        import grpc

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the server exited during start-up")
            try:
                with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
                    grpc.channel_ready_future(channel).result(timeout=1)
                return
            except grpc.FutureTimeoutError:
                time.sleep(0.5)
        raise RuntimeError("the server did not start")

    def runner(self, version: int) -> Runner:
        """Requests carry the source texts, `batch` in flight at a time."""
        from seq2seq_client import AsyncSeq2SeqClient, DecodeOptions

        def run(sources: list[Source], beam: int, batch: int, tokens: int) -> list[int]:
            options = DecodeOptions(
                model="anchor",
                model_version=version,
                beam_size=beam,
                min_output_tokens=tokens,
                max_output_tokens=tokens,
            )

            async def all_of_them() -> list[int]:
                gate = asyncio.Semaphore(batch)
                async with AsyncSeq2SeqClient(f"127.0.0.1:{self.port}", timeout=600) as client:

                    async def one(text: str) -> int:
                        async with gate:
                            result = await client.translate(
                                text, "fr", source_language="en", options=options
                            )
                            best = result.hypotheses[0]
                            return len(best.target_tokens) + (best.finish_reason == "eos")

                    return list(await asyncio.gather(*(one(text) for text, _ in sources)))

            return asyncio.run(all_of_them())

        return run

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def measure(
    runners: dict[str, Runner],
    sources: dict[int, list[Source]],
    tokens: int,
    rounds: int,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Interleaved rounds: in each, every engine decodes every configuration once (after a
    short warm-up of every engine and configuration)."""
    for _, beam, batch in CONFIGS:
        for run in runners.values():
            run(sources[batch][:2], beam, batch, 4)
    seconds: dict[str, dict[str, list[float]]] = {}
    lengths: dict[str, dict[str, list[int]]] = {}
    for round_index in range(1, rounds + 1):
        for config, beam, batch in CONFIGS:
            key = f"{config}_bs{batch}"
            for name, run in runners.items():
                started = time.perf_counter()
                out = run(sources[batch], beam, batch, tokens)
                took = time.perf_counter() - started
                seconds.setdefault(key, {}).setdefault(name, []).append(took)
                lengths.setdefault(key, {})[name] = sorted(set(out))
                log(f"round {round_index} {key:12s} {name:18s} {took:7.2f} s")
    results: dict[str, Any] = {}
    for key, by_engine in seconds.items():
        count = len(sources[int(key.rsplit("bs", 1)[1])])
        results[key] = {
            name: {
                "median_seconds": round(statistics.median(times), 4),
                "seconds": [round(t, 4) for t in times],
                "tokens_per_second": round(count * tokens / statistics.median(times), 1),
                "output_lengths": lengths[key][name],
            }
            for name, times in by_engine.items()
        }
    return results


def ratios(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, by_engine in results.items():
        for label, (top, bottom, target) in TARGETS.items():
            if top in by_engine and bottom in by_engine:
                value = by_engine[top]["tokens_per_second"] / by_engine[bottom]["tokens_per_second"]
                entry = {"ratio": round(value, 3)}
                if key.endswith("bs32"):
                    entry |= {"target": target, "met": value >= target}
                    if value < target:
                        entry["short_by"] = f"{(1 - value / target) * 100:.0f}%"
                out.setdefault(key, {})[label] = entry
    return out


def run(
    out_dir: Path,
    *,
    shape: str,
    checkpoint: Path | None,
    work: Path,
    tokens: int,
    rounds: int,
    threads: int,
    skip: Sequence[str] = (),
    optimum_overlay: Path | None = None,
) -> dict[str, Any]:
    from service.bundle import read_manifest
    from service.engine.tokenizer import open_tokenizer

    if shape == "opus":
        checkpoint = opus_checkpoint(work / "opus-mt-shape")
    assert checkpoint is not None, "--shape trained needs --checkpoint"
    paths = prepare(checkpoint, work, threads)
    manifest = read_manifest(paths["bundle_fp32"])
    tokenizer = open_tokenizer(paths["bundle_fp32"], manifest)
    vocab = {i: tokenizer.id_to_token(i) for i in range(manifest.vocab_size)}
    sources = {1: held_out_sources(tokenizer, 8), 32: held_out_sources(tokenizer, 32)}
    runners: dict[str, Runner] = {
        "hf_generate": hf_runner(checkpoint, threads),
        "ct2_fp32": ct2_runner(paths["ct2_fp32"], vocab, threads, "float32"),
        "ct2_int8": ct2_runner(paths["ct2_int8"], vocab, threads, "int8"),
        "ours_offline_fp32": ours_runner(paths["bundle_fp32"], threads),
        "ours_offline_int8": ours_runner(paths["bundle_int8"], threads),
    }
    optimum = None
    if optimum_overlay is not None and "optimum_ort" not in skip:
        optimum = OptimumWorker(checkpoint, work / "optimum", threads, optimum_overlay)
        runners["optimum_ort"] = optimum.runner()
    server = None
    if "ours_server_fp32" not in skip:
        server = Server(paths["repo"], threads, rows=32 * 4)
        runners["ours_server_fp32"] = server.runner(version=1)
    runners = {k: v for k, v in runners.items() if k not in skip}
    try:
        results = measure(runners, sources, tokens, rounds)
    finally:
        for worker in (server, optimum):
            if worker is not None:
                worker.close()
    report = {
        "shape": shape,
        "checkpoint": str(checkpoint),
        "parameters": manifest.training.get("parameters"),
        "threads": threads,
        "forced_output_tokens": tokens,
        "rounds": rounds,
        "sources": {"bs1": len(sources[1]), "bs32": len(sources[32])},
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "results": results,
        "ratios": ratios(results),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"anchors_{shape}.json"
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(table(report))
    print(f"wrote {path}")
    return report


def table(report: dict[str, Any]) -> str:
    """Markdown: output tokens per second by engine and configuration."""
    keys = [f"{c}_bs{b}" for c, _, b in CONFIGS]
    engines = list(next(iter(report["results"].values())))
    lines = ["| engine | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for name in engines:
        cells = [f"{report['results'][k][name]['tokens_per_second']:,.0f}" for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.anchors", description=__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--shape", choices=["opus", "trained"], default="opus")
    parser.add_argument("--checkpoint", type=Path, help="trained: the checkpoint folder")
    parser.add_argument("--work", type=Path, help="where models are converted (kept between runs)")
    parser.add_argument("--tokens", type=int, default=32, help="forced output tokens")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip", action="append", default=[], help="an engine to leave out")
    parser.add_argument(
        "--optimum-overlay",
        type=Path,
        help="a folder holding optimum-onnx and transformers < 4.58 (docs/benchmarks.md)",
    )
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.gettempdir()) / f"anchors-{args.shape}"
    run(
        args.out_dir,
        shape=args.shape,
        checkpoint=args.checkpoint,
        work=work,
        tokens=args.tokens,
        rounds=args.rounds,
        threads=args.threads,
        skip=args.skip,
        optimum_overlay=args.optimum_overlay,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
