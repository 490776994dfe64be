"""The one error the data stage raises, so callers can tell bad input from a bug."""

from __future__ import annotations


class DataError(ValueError):
    """Input lists or prepared files are missing, empty or corrupt; the message names which."""
