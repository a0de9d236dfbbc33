"""Reader (and a small writer, for tests and tools) of the IDX format of MNIST and Fashion-MNIST.

IDX layout (http://yann.lecun.com/exdb/mnist/): a 4-byte magic number 0x00 0x00 <type> <ndim>,
then ndim big-endian uint32 dimensions, then the values in row-major order, big-endian.
Types: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.
Files may be gzip-compressed (detected from the content, not the name).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from .errors import DataFormatError


class IDXFormatError(DataFormatError):
    """A file is not a valid IDX file (bad magic number, dimensions or length)."""


IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise IDXFormatError(
                f"{path}: gzip data is corrupted or truncated ({e}); delete the file and download it again "
                f"(deepcollapse.data.download), or put a good copy in its place"
            ) from e
    return raw


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in an IDX file (gzip or plain), in native byte order.

    Raises IDXFormatError naming the file if the magic number, the dimensions or the data length
    are invalid.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise IDXFormatError(f"{path}: {len(raw)} bytes, too short for an IDX header (4-byte magic number)")
    zero, type_code, ndim = raw[:2], raw[2], raw[3]
    if zero != b"\x00\x00":
        raise IDXFormatError(
            f"{path}: bad IDX magic number 0x{raw[:4].hex()} (must start with 0x0000); not an IDX file"
        )
    if type_code not in IDX_DTYPES:
        raise IDXFormatError(
            f"{path}: unknown IDX data type 0x{type_code:02x}; allowed: "
            + ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        )
    if ndim == 0:
        raise IDXFormatError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXFormatError(f"{path}: header declares {ndim} dimensions but the file ends after {len(raw)} bytes")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise IDXFormatError(
            f"{path}: header declares shape {shape} of {dtype} ({expected} data bytes) but the file holds "
            f"{len(raw) - header} data bytes (truncated or corrupted)"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def read_idx_images(path: str | os.PathLike, shape: tuple[int, int] | None = (28, 28)) -> np.ndarray:
    """Images from an IDX file of type uint8 with 3 dimensions: an N x rows x cols uint8 array.

    shape: the required (rows, cols), default MNIST's (28, 28); None accepts any.
    """
    images = read_idx(path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise IDXFormatError(
            f"{path}: expected an image file (uint8, 3 dimensions N x rows x cols), got {images.dtype} "
            f"with shape {images.shape}"
        )
    if shape is not None and images.shape[1:] != tuple(shape):
        raise IDXFormatError(f"{path}: images are {images.shape[1:]}, expected {tuple(shape)}")
    return images


def read_idx_labels(path: str | os.PathLike, num_classes: int | None = 10) -> np.ndarray:
    """Labels from an IDX file of type uint8 with 1 dimension, as an int64 array of length N.

    num_classes: labels must lie in 0..num_classes-1 (None: no check).
    """
    labels = read_idx(path)
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise IDXFormatError(
            f"{path}: expected a label file (uint8, 1 dimension), got {labels.dtype} with shape {labels.shape}"
        )
    labels = labels.astype(np.int64)
    if num_classes is not None and labels.size and labels.max() >= num_classes:
        raise IDXFormatError(f"{path}: label {labels.max()} out of range 0..{num_classes - 1}")
    return labels


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write `array` as an IDX file; gzip-compressed if `compress` (default: if the name ends in .gz)."""
    path = Path(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    code = next((c for c, dt in IDX_DTYPES.items() if dt.newbyteorder("=") == native), None)
    if code is None:
        raise ValueError(f"array dtype must be one of uint8, int8, int16, int32, float32, float64, got {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"array must have 1..255 dimensions, got {array.ndim}")
    payload = (
        bytes([0, 0, code, array.ndim])
        + np.asarray(array.shape, dtype=">u4").tobytes()
        + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    )
    if compress is None:
        compress = path.name.endswith(".gz")
    with open(path, "wb") as f:
        f.write(gzip.compress(payload, mtime=0) if compress else payload)
    return path
