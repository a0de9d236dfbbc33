"""Fixtures for every test: the shared real datasets (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TEST_DATA_ENV = "DEEPCOLLAPSE_TEST_DATA"


def shared_datasets_dir() -> Path:
    """$DEEPCOLLAPSE_TEST_DATA if set, else <project>/../shared/datasets."""
    env = os.environ.get(TEST_DATA_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def _require(*relative: str) -> Path:
    root = shared_datasets_dir()
    missing = [r for r in relative if not (root / r).exists()]
    if missing:
        pytest.skip(f"shared datasets not available: {', '.join(str(root / m) for m in missing)} missing "
                    f"(set {TEST_DATA_ENV} to a folder with mnist/, fashion-mnist/, cifar10-jpeg/)")
    return root


@pytest.fixture
def shared_root() -> Path:
    """The shared data root, with the MNIST and Fashion-MNIST t10k files present (else skip)."""
    return _require(
        "mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz",
        "fashion-mnist/t10k-images-idx3-ubyte.gz", "fashion-mnist/t10k-labels-idx1-ubyte.gz",
    )


@pytest.fixture
def shared_cifar_jpeg() -> Path:
    """The shared data root, with cifar10-jpeg/ present (else skip)."""
    return _require("cifar10-jpeg/train", "cifar10-jpeg/test")


@pytest.fixture
def shared_readme() -> Path:
    return _require("README.md") / "README.md"
