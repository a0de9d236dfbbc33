"""One entry point for real datasets: `load(name, split)` -> Dataset of float32 NHWC images.

Layout: `Dataset.x` is float32, N x H x W x C (NHWC, the layout of JAX/Flax convolutions), values
in [0, 1] (uint8 / 255); grey images have C = 1. `Dataset.y` holds int64 labels 0..K-1 and
`Dataset.classes[k]` names label k. By default (`order="class"`) samples come class by class, the
project's column convention (SPEC.md, "Data layout"); `order="shuffled"` permutes them with the seed.
For a DUFM-style feature matrix (d x N, one column per sample) use `as_columns(x)`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checksum import verify as verify_md5
from .cifar import read_cifar_batches
from .errors import DatasetNotFoundError
from .idx import read_idx_images, read_idx_labels
from .imagefolder import read_image_folder
from .root import ENV_VAR, data_root
from .sources import CIFAR10_CLASSES, SOURCES, Source

NAMES = ("mnist", "fashion-mnist", "cifar10", "cifar10-python", "cifar10-jpeg")
SPLITS = ("train", "test")
ORDERS = ("class", "shuffled")
# load() name -> the download() source that provides its files.
_DOWNLOAD_NAME = {"mnist": "mnist", "fashion-mnist": "fashion-mnist", "cifar10": "cifar10-python",
                  "cifar10-python": "cifar10-python"}


@dataclass(frozen=True)
class Dataset:
    """Images and labels of one split.

    x: float32, N x H x W x C (NHWC), values in [0, 1].  y: int64 (N,), labels 0..K-1.
    classes: class names, classes[k] is label k.  name, split: what was loaded.
    source: the files it came from ("mnist", "fashion-mnist", "cifar10-python", "cifar10-jpeg").
    """

    x: np.ndarray
    y: np.ndarray
    classes: list[str]
    name: str
    split: str
    source: str

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_counts(self) -> np.ndarray:
        """n_k, the number of samples of each class."""
        return np.bincount(self.y, minlength=self.num_classes)


def balanced_indices(y: np.ndarray, n_per_class: int, seed: int = 0,
                     num_classes: int | None = None) -> np.ndarray:
    """Indices of exactly `n_per_class` samples of every class, class by class, drawn without
    replacement (deterministic given `seed`), sorted within each class.

    Raises ValueError if a class has fewer than `n_per_class` samples.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D label array, got shape {y.shape}")
    if not isinstance(n_per_class, (int, np.integer)) or n_per_class < 1:
        raise ValueError(f"n_per_class must be a positive int, got {n_per_class!r}")
    K = int(y.max()) + 1 if num_classes is None else num_classes
    rng = np.random.default_rng(seed)
    chosen = []
    for k in range(K):
        members = np.flatnonzero(y == k)
        if members.size < n_per_class:
            raise ValueError(f"n_per_class={n_per_class} but class {k} has only {members.size} samples")
        chosen.append(np.sort(rng.choice(members, size=n_per_class, replace=False)))
    return np.concatenate(chosen)


def standardize(x: np.ndarray, mean: np.ndarray | None = None,
                std: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-channel standardisation of NHWC images (channel = last axis): (x - mean) / std.

    Without `mean`/`std` they are computed from `x` (population std over all other axes); pass the
    train split's stats to standardise the test split alike. Returns (x_std in x's dtype, mean, std).
    """
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"x must have a channel axis last (e.g. N x H x W x C), got shape {x.shape}")
    if (mean is None) != (std is None):
        raise ValueError("mean and std must be given together (both from the train split) or both None")
    axes = tuple(range(x.ndim - 1))
    if mean is None:
        mean = x.mean(axis=axes, dtype=np.float64)
        std = x.std(axis=axes, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    C = x.shape[-1]
    if mean.shape != (C,) or std.shape != (C,):
        raise ValueError(f"mean and std must have shape ({C},) (one per channel), got {mean.shape}, {std.shape}")
    if np.any(std <= 0):
        raise ValueError(f"std must be positive in every channel, got {std} (a constant channel?)")
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
    return ((x - mean) / std).astype(dtype), mean, std


def as_columns(x: np.ndarray) -> np.ndarray:
    """Samples as columns: N x ... -> d x N (d = product of the other axes), the DUFM layout."""
    x = np.asarray(x)
    return x.reshape(x.shape[0], -1).T


def _not_found(name: str, split: str, root: Path, searched: list[tuple[Path, list[str]]]) -> DatasetNotFoundError:
    env = os.environ.get(ENV_VAR)
    lines = [f"{name} ({split} split) not found under the data root {root}."]
    for folder, expected in searched:
        lines.append(f"  searched {folder}, expected: {', '.join(expected)}")
    to_download = _DOWNLOAD_NAME.get(name)
    if to_download is not None:
        lines.append(
            f"Download with deepcollapse.data.download({to_download!r}, root={str(root)!r}) on a "
            "machine with internet access, or copy the files there."
        )
    else:
        lines.append(f"{name} has no download: {SOURCES[name].note}")
    lines.append(
        f"Or point the data root at a folder that has them: load(..., root=PATH) or the environment "
        f"variable {ENV_VAR} (now {'unset' if env is None else repr(env)})."
    )
    return DatasetNotFoundError("\n".join(lines))


def _read_idx_split(source: Source, split: str, root: Path, verify: bool) -> tuple[np.ndarray, np.ndarray]:
    folder = root / source.folder
    names = source.splits[split]
    if not all((folder / n).is_file() for n in names):
        raise _not_found(source.name, split, root, [(folder, list(names))])
    if verify:
        for n in names:
            verify_md5(folder / n, source.file(n).md5)
    images = read_idx_images(folder / names[0])
    labels = read_idx_labels(folder / names[1], num_classes=len(source.classes))
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{folder}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels


def _cifar_python_available(root: Path, split: str) -> bool:
    src = SOURCES["cifar10-python"]
    return all((root / src.folder / n).is_file() for n in src.splits[split])


def load(name: str, split: str = "train", root: str | os.PathLike | None = None,
         n_per_class: int | None = None, seed: int = 0, verify: bool = True,
         order: str = "class") -> Dataset:
    """Load a dataset split as float32 NHWC images in [0, 1] with int64 labels.

    name:   "mnist", "fashion-mnist" or "cifar10" (the official pickle batches if present under the
            root, else the JPEG image-folder copy); "cifar10-python" / "cifar10-jpeg" force one.
    split:  "train" or "test".
    root:   data root (explicit > $DEEPCOLLAPSE_DATA > ~/.cache/deepcollapse/data).
    n_per_class: keep exactly this many samples per class, chosen at random (deterministic given
            `seed`); all samples if None. For the image folder only the chosen files are read.
    verify: check the official files' MD5 sums first (the JPEG copy has none).
    order:  "class" (class by class, the project's convention) or "shuffled" (a seeded permutation).
    """
    if name not in NAMES:
        raise ValueError(f"name must be one of {NAMES}, got {name!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if n_per_class is not None and (not isinstance(n_per_class, (int, np.integer)) or n_per_class < 1):
        raise ValueError(f"n_per_class must be a positive int or None, got {n_per_class!r}")
    root = data_root(root)
    subsample_seed, order_seed = np.random.SeedSequence(seed).spawn(2)
    subsample_seed = int(subsample_seed.generate_state(1)[0])

    if name in ("mnist", "fashion-mnist"):
        source = SOURCES[name]
        images, labels = _read_idx_split(source, split, root, verify)
        images = images[..., None]
        classes = list(source.classes)
    else:
        use_python = name == "cifar10-python" or (name == "cifar10" and _cifar_python_available(root, split))
        if use_python:
            source = SOURCES["cifar10-python"]
            folder = root / source.folder
            names = source.splits[split]
            if not _cifar_python_available(root, split):
                raise _not_found(name, split, root, [(folder, list(names))])
            if verify:
                for n in names:
                    verify_md5(folder / n, source.file(n).md5)
            images, labels = read_cifar_batches(folder, names)
        else:
            source = SOURCES["cifar10-jpeg"]
            folder = root / source.folder / split
            if not folder.is_dir():
                searched = [(folder, [f"{c}/*.jpg" for c in CIFAR10_CLASSES])]
                if name == "cifar10":
                    py = SOURCES["cifar10-python"]
                    searched.insert(0, (root / py.folder, list(py.splits[split])))
                raise _not_found(name, split, root, searched)
            images, labels, _ = read_image_folder(folder, CIFAR10_CLASSES, n_per_class, seed=subsample_seed)
        classes = list(CIFAR10_CLASSES)

    if n_per_class is not None and source.name != "cifar10-jpeg":  # the image folder subsampled already
        idx = balanced_indices(labels, n_per_class, seed=subsample_seed, num_classes=len(classes))
    else:
        idx = np.argsort(labels, kind="stable")
    if order == "shuffled":
        idx = idx[np.random.default_rng(order_seed).permutation(idx.size)]
    x = images[idx].astype(np.float32) / np.float32(255.0)
    return Dataset(x=x, y=labels[idx].astype(np.int64), classes=classes, name=name, split=split,
                   source=source.name)
