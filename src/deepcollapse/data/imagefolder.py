"""Reader of an image folder `<split>/<class name>/*.png|jpg` with Pillow, optionally a subset.

The classes are the subfolders sorted by name, or a given list (e.g. CIFAR-10's canonical order
airplane..truck, so that label k means the same as in the official files). Within a class the
files are taken in name order; with `n_per_class` only that many files per class are opened (the
first ones, or a random choice given `seed`), so a small subset of a large folder reads fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import DataFormatError


class ImageFormatError(DataFormatError):
    """An image of an image folder cannot be decoded (truncated, not an image) or has another size."""

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def list_image_folder(folder: str | os.PathLike, classes: Sequence[str] | None = None,
                      extensions: Sequence[str] = IMAGE_EXTENSIONS) -> tuple[list[str], list[list[Path]]]:
    """(classes, files per class) of an image folder, files sorted by name; no image is opened."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    if classes is None:
        classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
        if not classes:
            raise FileNotFoundError(f"image folder {folder} has no class subfolders")
    else:
        classes = list(classes)
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes must be distinct, got {classes}")
        absent = [c for c in classes if not (folder / c).is_dir()]
        if absent:
            raise FileNotFoundError(f"image folder {folder} has no subfolder for classes {absent}")
    exts = tuple(e.lower() for e in extensions)
    files = []
    for c in classes:
        with os.scandir(folder / c) as it:
            names = sorted(e.name for e in it if e.is_file() and e.name.lower().endswith(exts))
        if not names:
            raise FileNotFoundError(f"class folder {folder / c} holds no image ({', '.join(exts)})")
        files.append([folder / c / n for n in names])
    return list(classes), files


def read_image_folder(folder: str | os.PathLike, classes: Sequence[str] | None = None,
                      n_per_class: int | None = None, seed: int | None = None, mode: str = "RGB",
                      extensions: Sequence[str] = IMAGE_EXTENSIONS) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images of `folder/<class>/*`: (x N x H x W x C uint8, y (N,) int64, classes).

    classes:     the class subfolders in label order (default: all subfolders sorted by name).
    n_per_class: read only this many images per class (all by default); it is an error if a class
                 has fewer. The first files by name, or, given `seed`, a random choice (sorted).
    mode:        Pillow mode every image is converted to ("RGB": C = 3, "L": C = 1).
    Images come class by class. All images must have the same size.
    """
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
    if n_per_class is not None and (not isinstance(n_per_class, (int, np.integer)) or n_per_class < 1):
        raise ValueError(f"n_per_class must be a positive int or None, got {n_per_class!r}")
    from PIL import Image  # Pillow: an optional dependency (extra "nets")

    classes, files = list_image_folder(folder, classes, extensions)
    rng = np.random.default_rng(seed) if seed is not None else None
    chosen: list[Path] = []
    labels: list[int] = []
    for k, (c, fs) in enumerate(zip(classes, files)):
        if n_per_class is not None:
            if len(fs) < n_per_class:
                raise ValueError(f"n_per_class={n_per_class} but class {c!r} in {folder} has only {len(fs)} images")
            if rng is None:
                fs = fs[:n_per_class]
            else:
                fs = [fs[i] for i in np.sort(rng.choice(len(fs), size=n_per_class, replace=False))]
        chosen.extend(fs)
        labels.extend([k] * len(fs))
    images = []
    for p in chosen:
        try:
            with Image.open(p) as im:
                a = np.asarray(im.convert(mode), dtype=np.uint8)
        except (OSError, ValueError, SyntaxError) as e:  # Pillow's errors for truncated or foreign files
            raise ImageFormatError(
                f"{p}: cannot be read as an image ({e}); the file is damaged: replace it with a good "
                f"copy of the dataset"
            ) from e
        if images and a.shape != images[0].shape:
            raise ImageFormatError(f"{p} has size {a.shape[:2]}, the folder's first image {images[0].shape[:2]}")
        images.append(a)
    x = np.stack(images)
    if x.ndim == 3:
        x = x[..., None]
    return x, np.asarray(labels, dtype=np.int64), classes
