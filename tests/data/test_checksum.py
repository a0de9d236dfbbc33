import hashlib

import pytest

from deepcollapse.data import ChecksumError, md5_file, verify


def test_md5_known_value(tmp_path):
    p = tmp_path / "abc"
    p.write_bytes(b"abc")
    # RFC 1321 test suite: MD5("abc")
    assert md5_file(p) == "900150983cd24fb0d6963f7d28e17f72"


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_md5_streamed_any_chunk(tmp_path, chunk):
    data = bytes(range(256)) * 41 + b"tail"
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    assert md5_file(p, chunk_size=chunk) == hashlib.md5(data).hexdigest()


def test_verify_passes_and_fails(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"hello")
    good = hashlib.md5(b"hello").hexdigest()
    verify(p, good)
    verify(p, good.upper())
    bad = hashlib.md5(b"hellO").hexdigest()
    with pytest.raises(ChecksumError) as info:
        verify(p, bad)
    err = info.value
    assert isinstance(err, ValueError)
    msg = str(err)
    assert str(p) in msg and bad in msg and good in msg
    assert "download" in msg  # says what to do
    assert err.expected == bad and err.actual == good


def test_verify_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        verify(tmp_path / "missing", "0" * 32)
    p = tmp_path / "f"
    p.write_bytes(b"")
    with pytest.raises(ValueError, match="32 hex digits"):
        verify(p, "xyz")
