"""Render the evaluation figures of every bundle in a repository as a markdown table.

    python -m model_export.report models

The figures come from each bundle.json, so the docs cannot drift from what was measured.
"""

from __future__ import annotations

import sys
from pathlib import Path

from service.bundle import BundleManifest, read_manifest


def _bundles(repo: Path) -> list[tuple[Path, BundleManifest]]:
    found = []
    for manifest_path in sorted(repo.glob("*/*/bundle.json")):
        found.append((manifest_path.parent, read_manifest(manifest_path.parent)))
    return found


def _figures(metrics: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in sorted(metrics.items()))


def render(repo: Path) -> str:
    lines = [
        "| bundle | task | test examples | model (greedy) | baselines | size |",
        "|---|---|---|---|---|---|",
    ]
    for bundle_dir, manifest in _bundles(repo):
        evaluation = manifest.evaluation
        size = sum(p.stat().st_size for p in bundle_dir.iterdir() if p.is_file()) / 1e6
        if evaluation is None:
            lines.append(
                f"| {manifest.name} v{manifest.version} | {manifest.task} | - | - | - "
                f"| {size:.1f} MB |"
            )
            continue
        baselines = "; ".join(
            f"{name}: {_figures(figures)}" for name, figures in sorted(evaluation.baselines.items())
        )
        lines.append(
            f"| {manifest.name} v{manifest.version} | {manifest.task} | "
            f"{evaluation.num_examples} | {_figures(evaluation.metrics)} | {baselines} | "
            f"{size:.1f} MB |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    print(render(Path(args[0] if args else "models")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
