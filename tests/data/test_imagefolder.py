import time

import numpy as np
import pytest
from PIL import Image

from deepcollapse.data import CIFAR10_CLASSES, list_image_folder, load, read_image_folder


def write_png_folder(folder, classes=("cat", "ant", "bee"), n=4, size=(6, 5)):
    """folder/<class>/NNN.png, image j of class k filled with (10 k + j, 2 j, 200 - k)."""
    for k, c in enumerate(classes):
        (folder / c).mkdir(parents=True)
        for j in range(n):
            a = np.empty(size + (3,), np.uint8)
            a[...] = (10 * k + j, 2 * j, 200 - k)
            a[0, 0] = (k, j, 7)  # one distinct pixel
            Image.fromarray(a).save(folder / c / f"{j:03d}.png")
    return classes


def test_pngs_read_exactly_and_sorted(tmp_path):
    write_png_folder(tmp_path)
    x, y, classes = read_image_folder(tmp_path)
    assert classes == ["ant", "bee", "cat"]
    assert x.shape == (12, 6, 5, 3) and x.dtype == np.uint8
    np.testing.assert_array_equal(y, np.repeat([0, 1, 2], 4))
    # x[2]: "ant" (written as k=1), image j=2; x[6]: "bee" (written as k=2), image j=2
    np.testing.assert_array_equal(x[2, 1, 1], [10 * 1 + 2, 4, 199])
    np.testing.assert_array_equal(x[2, 0, 0], [1, 2, 7])
    np.testing.assert_array_equal(x[6, 3, 4], [10 * 2 + 2, 4, 198])


def test_given_class_order_and_grey(tmp_path):
    write_png_folder(tmp_path)
    x, y, classes = read_image_folder(tmp_path, classes=["cat", "bee"], mode="L")
    assert classes == ["cat", "bee"] and x.shape == (8, 6, 5, 1)
    rgb = np.array([0 + 3, 6, 200], np.float64)  # cat is written index 0, image 3
    grey = rgb @ [0.299, 0.587, 0.114]  # ITU-R 601-2 luma, Pillow's "L" conversion
    assert abs(int(x[3, 2, 2, 0]) - grey) <= 1
    with pytest.raises(FileNotFoundError, match=r"\['dog'\]"):
        read_image_folder(tmp_path, classes=["cat", "dog"])


def test_n_per_class_stops_early(tmp_path):
    write_png_folder(tmp_path)
    for c in ("ant", "bee", "cat"):
        (tmp_path / c / "zzz.png").write_bytes(b"not an image")  # last by name: never opened
    x, y, _ = read_image_folder(tmp_path, n_per_class=2)
    assert x.shape == (6, 6, 5, 3)
    np.testing.assert_array_equal(y, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(x[:2, 0, 0, 1], [0, 1])  # the first two files
    with pytest.raises(Exception):
        read_image_folder(tmp_path)  # reading everything hits the broken file


def test_n_per_class_seeded_choice(tmp_path):
    write_png_folder(tmp_path, n=6)
    a = read_image_folder(tmp_path, n_per_class=3, seed=1)[0]
    b = read_image_folder(tmp_path, n_per_class=3, seed=1)[0]
    np.testing.assert_array_equal(a, b)
    picked = a[:, 0, 0, 1].reshape(3, 3)  # image index j of each pick, per class
    assert np.all(np.diff(picked, axis=1) > 0) and picked.max() < 6
    with pytest.raises(ValueError, match="only 6 images"):
        read_image_folder(tmp_path, n_per_class=7)


def test_list_and_errors(tmp_path):
    write_png_folder(tmp_path, classes=("a",), n=2)
    classes, files = list_image_folder(tmp_path)
    assert classes == ["a"] and [f.name for f in files[0]] == ["000.png", "001.png"]
    with pytest.raises(FileNotFoundError):
        read_image_folder(tmp_path / "nope")
    with pytest.raises(ValueError, match="n_per_class"):
        read_image_folder(tmp_path, n_per_class=0)
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(tmp_path / "a" / "002.png")
    with pytest.raises(ValueError, match="size"):
        read_image_folder(tmp_path)


def test_shared_cifar10_jpeg_subset(shared_cifar_jpeg):
    t0 = time.perf_counter()
    x, y, classes = read_image_folder(shared_cifar_jpeg / "cifar10-jpeg" / "train", CIFAR10_CLASSES, n_per_class=3)
    assert time.perf_counter() - t0 < 5.0
    assert x.shape == (30, 32, 32, 3) and classes == list(CIFAR10_CLASSES)
    np.testing.assert_array_equal(y, np.repeat(np.arange(10), 3))
    ds = load("cifar10", "test", root=shared_cifar_jpeg, n_per_class=3)
    assert ds.source == "cifar10-jpeg" and ds.x.shape == (30, 32, 32, 3)
    assert ds.classes == list(CIFAR10_CLASSES)
    np.testing.assert_array_equal(ds.class_counts(), np.full(10, 3))
    assert 0.0 <= ds.x.min() and ds.x.max() <= 1.0 and ds.x.std() > 0.05
