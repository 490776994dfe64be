"""The `seq2seq-export` console script: says in one line when the export extra is missing.

The command is installed with the package, but training and export need torch, onnx and
the rest of the `export` extra, which a serving install leaves out on purpose.
"""

from __future__ import annotations

import importlib.util
import sys

EXTRA = ("torch", "onnx", "onnxscript", "sacrebleu", "rouge_score")  # the export extra's modules


def main(argv: list[str] | None = None) -> int:
    missing = [name for name in EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"seq2seq-export: error: the export extra is not installed (no {', '.join(missing)}); "
            "install the CPU build of torch, then pip install -e '.[export]' (see the README)",
            file=sys.stderr,
        )
        return 2
    from model_export.cli import main as run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
