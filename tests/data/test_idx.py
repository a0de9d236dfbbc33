import gzip
import struct

import numpy as np
import pytest

from deepcollapse.data import IDXFormatError, read_idx, read_idx_images, read_idx_labels, write_idx


def _hand_written_idx(images: np.ndarray) -> bytes:
    """IDX bytes built from the format's definition, independently of write_idx."""
    n, r, c = images.shape
    return struct.pack(">BBBBIII", 0, 0, 0x08, 3, n, r, c) + images.astype(np.uint8).tobytes()


@pytest.mark.parametrize("gz", [False, True])
def test_images_round_trip_hand_written(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    raw = _hand_written_idx(images)
    p = tmp_path / ("img.idx3-ubyte" + (".gz" if gz else ""))
    p.write_bytes(gzip.compress(raw) if gz else raw)
    out = read_idx_images(p)
    assert out.dtype == np.uint8 and out.shape == (5, 28, 28)
    np.testing.assert_array_equal(out, images)


@pytest.mark.parametrize("name", ["lab.idx1-ubyte", "lab.idx1-ubyte.gz"])
def test_labels_round_trip(tmp_path, name):
    labels = np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.uint8)
    p = write_idx(tmp_path / name, labels)
    assert (p.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    out = read_idx_labels(p)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, labels)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.float32, np.float64])
def test_other_dtypes_round_trip(tmp_path, dtype):
    a = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    out = read_idx(write_idx(tmp_path / "a.idx", a))
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, a)


def test_header_is_big_endian(tmp_path):
    raw = write_idx(tmp_path / "a.idx", np.zeros((300, 2, 2), np.uint8)).read_bytes()
    assert raw[:4] == b"\x00\x00\x08\x03"
    assert struct.unpack(">I", raw[4:8])[0] == 300


def test_bad_magic(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(b"\x12\x34\x08\x01" + struct.pack(">I", 2) + b"\x00\x01")
    with pytest.raises(IDXFormatError, match="magic number"):
        read_idx(p)


def test_unknown_type(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 2) + b"\x00\x01")
    with pytest.raises(IDXFormatError, match="data type 0x07"):
        read_idx(p)


def test_truncated_data_and_header(tmp_path):
    raw = _hand_written_idx(np.zeros((4, 28, 28), np.uint8))
    p = tmp_path / "trunc.gz"
    p.write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(IDXFormatError, match=r"shape \(4, 28, 28\).*truncated"):
        read_idx(p)
    p.write_bytes(raw[:9])
    with pytest.raises(IDXFormatError, match="3 dimensions"):
        read_idx(p)
    p.write_bytes(b"\x00\x00")
    with pytest.raises(IDXFormatError, match="too short"):
        read_idx(p)


def test_corrupted_gzip(tmp_path):
    raw = bytearray(gzip.compress(_hand_written_idx(np.ones((2, 28, 28), np.uint8))))
    p = tmp_path / "c.gz"
    p.write_bytes(bytes(raw[: len(raw) // 2]))
    with pytest.raises(IDXFormatError, match="gzip"):
        read_idx(p)


def test_wrong_kind_of_file(tmp_path):
    labels = write_idx(tmp_path / "l.idx", np.zeros(3, np.uint8))
    with pytest.raises(IDXFormatError, match="image file"):
        read_idx_images(labels)
    images = write_idx(tmp_path / "i.idx", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(IDXFormatError, match="label file"):
        read_idx_labels(images)
    small = write_idx(tmp_path / "s.idx", np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(IDXFormatError, match=r"expected \(28, 28\)"):
        read_idx_images(small)
    assert read_idx_images(small, shape=None).shape == (2, 8, 8)
    out_of_range = write_idx(tmp_path / "o.idx", np.array([0, 10], np.uint8))
    with pytest.raises(IDXFormatError, match="out of range"):
        read_idx_labels(out_of_range)
