"""Reader of the official CIFAR-10 "python version" batches (cifar-10-batches-py/).

Each batch file (data_batch_1..5, test_batch) is a pickled dict with b"data", an N x 3072 uint8
array whose rows are the 1024 red, then 1024 green, then 1024 blue values of a 32x32 image in
row-major order, and b"labels", N ints in 0..9. batches.meta holds b"label_names".

Pickle can run code while loading: read only files you trust, e.g. the official ones after their
MD5 was verified (datasets.load does that by default).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import DataFormatError

CIFAR_SHAPE = (32, 32, 3)


class CIFARFormatError(DataFormatError):
    """A file does not have the layout of an official CIFAR-10 python batch."""


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise CIFARFormatError(f"{path}: not a readable pickle file ({e})") from e
    if not isinstance(obj, dict):
        raise CIFARFormatError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    # The official files were written by Python 2 and load with bytes keys; accept str keys too.
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch: images N x 32 x 32 x 3 uint8 (NHWC) and labels (N,) int64."""
    path = Path(path)
    batch = _unpickle(path)
    for key in ("data", "labels"):
        if key not in batch:
            raise CIFARFormatError(f"{path}: missing key b'{key}' (has {sorted(batch)})")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise CIFARFormatError(f"{path}: b'data' must be an N x 3072 uint8 array, got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise CIFARFormatError(f"{path}: {labels.shape} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise CIFARFormatError(f"{path}: labels must lie in 0..9, got {labels.min()}..{labels.max()}")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def read_cifar_meta(path: str | os.PathLike) -> list[str]:
    """The class names of batches.meta (b"label_names"), label k first at index k."""
    path = Path(path)
    meta = _unpickle(path)
    if "label_names" not in meta:
        raise CIFARFormatError(f"{path}: missing key b'label_names' (has {sorted(meta)})")
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in meta["label_names"]]


def read_cifar_batches(folder: str | os.PathLike, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The batches `names` of `folder`, concatenated in the given order."""
    if not names:
        raise ValueError("names must list at least one batch file")
    parts = [read_cifar_batch(Path(folder) / n) for n in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
