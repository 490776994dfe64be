"""`python -m model_export ...` is the same as the `seq2seq-export` console script."""

from model_export.entry import main

if __name__ == "__main__":
    raise SystemExit(main())
