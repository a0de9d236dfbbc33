import pickle

import numpy as np
import pytest

from deepcollapse.data import (
    CIFAR10_CLASSES,
    CIFARFormatError,
    ChecksumError,
    load,
    read_cifar_batch,
    read_cifar_meta,
)


def test_batch_layout(tmp_path, write_fake_cifar):
    truth = write_fake_cifar(tmp_path / "cifar-10-batches-py")
    x, y = read_cifar_batch(tmp_path / "cifar-10-batches-py" / "data_batch_3")
    assert x.shape == (4, 32, 32, 3) and x.dtype == np.uint8
    np.testing.assert_array_equal(x, truth["data_batch_3"][0])
    np.testing.assert_array_equal(y, truth["data_batch_3"][1])
    # the pixel formula, read back at one place: image 2, row 5, column 9, blue
    assert x[2, 5, 9, 2] == (80 + 14 + 15 + 45 + 22) % 256
    assert read_cifar_meta(tmp_path / "cifar-10-batches-py" / "batches.meta") == list(CIFAR10_CLASSES)


def test_load_cifar_python(tmp_path, write_fake_cifar):
    truth = write_fake_cifar(tmp_path / "cifar-10-batches-py")
    ds = load("cifar10", "train", root=tmp_path, verify=False)
    assert ds.source == "cifar10-python" and ds.x.shape == (20, 32, 32, 3) and ds.x.dtype == np.float32
    assert ds.classes == list(CIFAR10_CLASSES)
    assert np.all(np.diff(ds.y) >= 0)  # class by class
    train = [f"data_batch_{i}" for i in range(1, 6)]
    all_images = np.concatenate([truth[n][0] for n in train])
    all_labels = np.concatenate([truth[n][1] for n in train])
    order = np.argsort(all_labels, kind="stable")
    np.testing.assert_array_equal(ds.y, all_labels[order])
    np.testing.assert_allclose(ds.x, all_images[order] / 255.0, rtol=1e-6)
    test = load("cifar10", "test", root=tmp_path, verify=False)
    assert len(test) == 4


def test_load_cifar_python_verifies_official_md5(tmp_path, write_fake_cifar):
    write_fake_cifar(tmp_path / "cifar-10-batches-py")
    with pytest.raises(ChecksumError, match="data_batch_1"):
        load("cifar10", "train", root=tmp_path)


def test_malformed_batch(tmp_path):
    p = tmp_path / "bad"
    with open(p, "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f, protocol=2)
    with pytest.raises(CIFARFormatError, match="N x 3072"):
        read_cifar_batch(p)
    with open(p, "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8)}, f, protocol=2)
    with pytest.raises(CIFARFormatError, match="labels"):
        read_cifar_batch(p)
    p.write_bytes(b"not a pickle")
    with pytest.raises(CIFARFormatError, match="pickle"):
        read_cifar_batch(p)
