"""Fixtures for the data tests: tiny fakes (the shared real datasets are in tests/conftest.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from deepcollapse.data import CIFAR10_CLASSES

# --- tiny CIFAR-10 batches in the official pickle layout ---

TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


def _images(n, offset):
    """n images whose pixel (r, c, ch) is (offset + 7 i + 3 r + 5 c + 11 ch) mod 256."""
    i, r, c, ch = np.meshgrid(np.arange(n), np.arange(32), np.arange(32), np.arange(3), indexing="ij")
    return ((offset + 7 * i + 3 * r + 5 * c + 11 * ch) % 256).astype(np.uint8)


def _official_rows(images):
    """Official row layout: 1024 red (row-major), 1024 green, 1024 blue, built plane by plane."""
    return np.stack([np.concatenate([im[:, :, ch].ravel() for ch in range(3)]) for im in images])


def _write_fake_cifar(folder, n=4):
    """data_batch_1..5, test_batch, batches.meta in the official pickle layout, n images each."""
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for b, name in enumerate(TRAIN + ["test_batch"]):
        images = _images(n, 40 * b)
        labels = [(b + j) % 10 for j in range(n)]
        batch = {b"batch_label": name.encode(), b"labels": labels,
                 b"data": _official_rows(images), b"filenames": [f"{name}_{j}.png".encode() for j in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        truth[name] = (images, np.array(labels))
    meta = {b"num_cases_per_batch": n, b"label_names": [c.encode() for c in CIFAR10_CLASSES], b"num_vis": 3072}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return truth


@pytest.fixture
def write_fake_cifar():
    """The writer of tiny official-layout CIFAR-10 batches: write_fake_cifar(folder, n=4) -> truth."""
    return _write_fake_cifar
