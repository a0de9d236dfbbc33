"""MD5 checksums of data files, computed streamed, and their verification."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .errors import DataFormatError


class ChecksumError(DataFormatError):
    """A file's MD5 differs from the expected one (a corrupted or a different file)."""

    def __init__(self, path: str | os.PathLike, expected: str, actual: str, hint: str | None = None):
        self.path = Path(path)
        self.expected = expected
        self.actual = actual
        hint = hint or (
            "The file is corrupted, truncated or not the official one: delete it and download it again "
            "(deepcollapse.data.download), or put a good copy in its place."
        )
        super().__init__(f"MD5 mismatch for {self.path}: expected {expected}, got {actual}. {hint}")


def md5_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex MD5 digest of a file, read in chunks of `chunk_size` bytes."""
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be a positive number of bytes, got {chunk_size}")
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: str | os.PathLike, md5: str, hint: str | None = None) -> None:
    """Raise ChecksumError unless the MD5 of the file at `path` equals `md5` (case-insensitive).

    A missing file raises FileNotFoundError naming it.
    """
    path = Path(path)
    expected = md5.strip().lower()
    if len(expected) != 32 or any(c not in "0123456789abcdef" for c in expected):
        raise ValueError(f"md5 must be 32 hex digits, got {md5!r}")
    if not path.is_file():
        raise FileNotFoundError(f"cannot verify {path}: no such file")
    actual = md5_file(path)
    if actual != expected:
        raise ChecksumError(path, expected, actual, hint)
