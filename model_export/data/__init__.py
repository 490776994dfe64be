"""Datasets from real public text: Debian package descriptions and their human translations.

Public API used by training: prepare, load_split, dataset_sha256, DATASETS, SPLITS, DataError.
"""

from model_export.data.errors import DataError
from model_export.data.prepare import prepare
from model_export.data.split import SPLITS, split_of
from model_export.data.store import DATASETS, LANGUAGES, dataset_sha256, load_split

__all__ = [
    "DATASETS",
    "LANGUAGES",
    "SPLITS",
    "DataError",
    "dataset_sha256",
    "load_split",
    "prepare",
    "split_of",
]
