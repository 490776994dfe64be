"""Entry point for `python -m model_export.data`."""

import sys

from model_export.data.cli import main

sys.exit(main())
