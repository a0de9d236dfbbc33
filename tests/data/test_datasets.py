import shutil

import numpy as np
import pytest

from deepcollapse.data import (
    FASHION_MNIST_CLASSES,
    ChecksumError,
    DatasetNotFoundError,
    ENV_VAR,
    as_columns,
    balanced_indices,
    get_source,
    load,
    read_idx_images,
    read_idx_labels,
    standardize,
    verify,
)

# Published class sizes of the 10,000 test images.
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_t10k_files_verify_and_read(shared_root, name):
    source = get_source(name)
    for f in source.splits["test"]:
        verify(shared_root / source.folder / f, source.file(f).md5)
    images = read_idx_images(shared_root / name / "t10k-images-idx3-ubyte.gz")
    labels = read_idx_labels(shared_root / name / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    counts = np.bincount(labels, minlength=10)
    assert counts.sum() == 10000 and np.all(counts > 0) and counts.size == 10
    if name == "mnist":
        assert counts.tolist() == MNIST_TEST_COUNTS
    else:
        assert counts.tolist() == [1000] * 10
    assert images.min() == 0 and images.max() == 255


def test_load_mnist_test(shared_root, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(shared_root))  # root from the environment variable
    ds = load("mnist", "test")
    assert ds.x.shape == (10000, 28, 28, 1) and ds.x.dtype == np.float32
    assert ds.y.dtype == np.int64 and ds.classes == [str(k) for k in range(10)]
    assert ds.class_counts().tolist() == MNIST_TEST_COUNTS
    assert np.all(np.diff(ds.y) >= 0)  # class by class
    raw = read_idx_images(shared_root / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx_labels(shared_root / "mnist" / "t10k-labels-idx1-ubyte.gz")
    order = np.argsort(labels, kind="stable")
    np.testing.assert_array_equal(ds.x[..., 0] * 255, raw[order].astype(np.float32))


def test_load_fashion_subsample(shared_root):
    a = load("fashion-mnist", "test", root=shared_root, n_per_class=7, seed=3)
    b = load("fashion-mnist", "test", root=shared_root, n_per_class=7, seed=3)
    c = load("fashion-mnist", "test", root=shared_root, n_per_class=7, seed=4)
    assert a.x.shape == (70, 28, 28, 1) and a.classes == list(FASHION_MNIST_CLASSES)
    np.testing.assert_array_equal(a.y, np.repeat(np.arange(10), 7))
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)
    s = load("fashion-mnist", "test", root=shared_root, n_per_class=7, seed=3, order="shuffled")
    assert not np.all(np.diff(s.y) >= 0)
    key = lambda ds: sorted(zip(ds.y.tolist(), (im.tobytes() for im in ds.x)))
    assert key(s) == key(a)  # the same samples, permuted


def test_corrupted_copy_raises(shared_root, tmp_path):
    (tmp_path / "mnist").mkdir()
    for f in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(shared_root / "mnist" / f, tmp_path / "mnist" / f)
    load("mnist", "test", root=tmp_path, n_per_class=1)  # the intact copy passes
    p = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    data = bytearray(p.read_bytes())
    data[5000] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="t10k-images-idx3-ubyte.gz") as info:
        load("mnist", "test", root=tmp_path)
    assert info.value.expected == "9fb629c4189551a2d022fa330f9573f3"


def test_missing_files_message(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(DatasetNotFoundError) as info:
        load("fashion-mnist", "train", root=tmp_path)
    msg = str(info.value)
    assert "fashion-mnist" in msg and str(tmp_path / "fashion-mnist") in msg
    assert "train-images-idx3-ubyte.gz" in msg and "train-labels-idx1-ubyte.gz" in msg
    assert "download('fashion-mnist'" in msg and ENV_VAR in msg
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py"):
        load("cifar10", root=tmp_path)


def test_load_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="name must be one of"):
        load("svhn", root=tmp_path)
    with pytest.raises(ValueError, match="split must be one of"):
        load("mnist", "val", root=tmp_path)
    with pytest.raises(ValueError, match="order must be one of"):
        load("mnist", order="random", root=tmp_path)
    with pytest.raises(ValueError, match="n_per_class"):
        load("mnist", n_per_class=0, root=tmp_path)


def test_balanced_indices():
    rng = np.random.default_rng(0)
    y = rng.permutation(np.repeat(np.arange(4), [9, 12, 10, 30]))
    idx = balanced_indices(y, 5, seed=1)
    assert idx.size == 20 and len(set(idx.tolist())) == 20
    np.testing.assert_array_equal(y[idx], np.repeat(np.arange(4), 5))
    np.testing.assert_array_equal(idx, balanced_indices(y, 5, seed=1))
    assert not np.array_equal(idx, balanced_indices(y, 5, seed=2))
    np.testing.assert_array_equal(np.sort(balanced_indices(y, 9, seed=5)[:9]), np.flatnonzero(y == 0))
    with pytest.raises(ValueError, match="class 0 has only 9"):
        balanced_indices(y, 10)


def test_standardize_per_channel():
    rng = np.random.default_rng(0)
    scale = np.array([0.5, 2.0, 10.0])
    shift = np.array([1.0, -3.0, 50.0])
    x = (rng.standard_normal((40, 4, 5, 3)) * scale + shift).astype(np.float32)
    z, mean, std = standardize(x)
    assert z.dtype == np.float32
    flat = x.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(mean, flat.mean(0), rtol=1e-12)
    np.testing.assert_allclose(std, np.sqrt(((flat - flat.mean(0)) ** 2).mean(0)), rtol=1e-12)
    np.testing.assert_allclose(z.reshape(-1, 3).mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.reshape(-1, 3).std(0), 1.0, atol=1e-5)
    x_test = x[:3] + 1.0
    z_test, m2, s2 = standardize(x_test, mean, std)
    np.testing.assert_allclose(z_test, (x_test - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(m2, mean)
    np.testing.assert_array_equal(s2, std)
    with pytest.raises(ValueError, match="together"):
        standardize(x, mean=mean)
    with pytest.raises(ValueError, match="one per channel"):
        standardize(x, mean[:2], std[:2])
    with pytest.raises(ValueError, match="positive"):
        standardize(np.ones((4, 2, 2, 1)))


def test_as_columns():
    x = np.arange(2 * 3 * 2 * 1).reshape(2, 3, 2, 1)
    H = as_columns(x)
    assert H.shape == (6, 2)
    np.testing.assert_array_equal(H[:, 1], x[1].ravel())
