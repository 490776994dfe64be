"""Optimum's ONNX Runtime seq2seq model as a worker process for `benchmarks/anchors.py`.

optimum-onnx pins transformers < 4.58 while the importer needs transformers 5, so this
runs in its own process with an overlay folder first on PYTHONPATH (see docs/benchmarks.md):

    PYTHONPATH=OVERLAY:. python -m benchmarks.anchors_optimum CHECKPOINT EXPORT_DIR THREADS

It exports the checkpoint once with Optimum's own exporter (into EXPORT_DIR), then reads
one JSON request per line on stdin ({"sources": [[ids]], "beam", "batch", "tokens"}) and
answers one JSON line ({"lengths": [...]}) after decoding the sources `batch` at a time
with `generate()`, output lengths forced like every other engine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> int:
    checkpoint, export_dir, threads = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    import onnxruntime as ort
    import torch
    from optimum.onnxruntime import ORTModelForSeq2SeqLM

    torch.set_num_threads(threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if not (export_dir / "config.json").is_file():
        ORTModelForSeq2SeqLM.from_pretrained(checkpoint, export=True).save_pretrained(export_dir)
    model = ORTModelForSeq2SeqLM.from_pretrained(
        export_dir, session_options=options, provider="CPUExecutionProvider"
    )
    pad = model.config.pad_token_id
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        sources, batch = request["sources"], request["batch"]
        lengths: list[int] = []
        for start in range(0, len(sources), batch):
            chunk = sources[start : start + batch]
            width = max(len(s) for s in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            for row, source in enumerate(chunk):
                ids[row, : len(source)] = torch.tensor(source)
            out = model.generate(
                input_ids=ids,
                attention_mask=(ids != pad).long(),
                num_beams=request["beam"],
                do_sample=False,
                min_new_tokens=request["tokens"],
                max_new_tokens=request["tokens"],
            )
            lengths += [int((row != pad).sum()) for row in out[:, 1:]]
        print(json.dumps({"lengths": lengths}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
