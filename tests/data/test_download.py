"""download/fetch on file:// URLs and unreachable ones: these tests never touch the network."""

import hashlib
import tarfile

import numpy as np
import pooch
import pytest
import requests

from deepcollapse.data import (
    DownloadError,
    FileSpec,
    OfflineError,
    Source,
    download,
    fetch,
    load,
    write_idx,
)


def _serve(tmp_path, name, payload):
    """A 'mirror' folder holding `name`, its file:// base URL and the payload's md5."""
    mirror = tmp_path / "mirror"
    mirror.mkdir(exist_ok=True)
    (mirror / name).write_bytes(payload)
    return mirror, mirror.as_uri() + "/", hashlib.md5(payload).hexdigest()


def test_fetch_file_url(tmp_path):
    payload = bytes(range(256)) * 100
    mirror, base, md5 = _serve(tmp_path, "a.bin", payload)
    dest = tmp_path / "out" / "a.bin"
    assert fetch([base + "a.bin"], dest, md5) == dest
    assert dest.read_bytes() == payload
    assert [p.name for p in dest.parent.iterdir()] == ["a.bin"]  # no temporary file left


def test_fetch_wrong_md5_leaves_nothing(tmp_path):
    mirror, base, md5 = _serve(tmp_path, "a.bin", b"payload")
    dest = tmp_path / "out" / "a.bin"
    with pytest.raises(DownloadError, match="MD5 mismatch") as info:
        fetch([base + "a.bin"], dest, "0" * 32)
    assert not isinstance(info.value, OfflineError)
    assert list(dest.parent.iterdir()) == []


def test_fetch_falls_back_to_next_mirror(tmp_path):
    mirror, base, md5 = _serve(tmp_path, "a.bin", b"second mirror")
    dest = tmp_path / "a.bin"
    fetch([(tmp_path / "missing").as_uri() + "/a.bin", base + "a.bin"], dest, md5)
    assert dest.read_bytes() == b"second mirror"


def _tiny_idx_source(tmp_path):
    """A Source of two self-written IDX files, with their md5 sums, served from a file:// mirror."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    images = np.arange(2 * 28 * 28, dtype=np.int64).reshape(2, 28, 28) % 256
    write_idx(mirror / "t10k-images-idx3-ubyte.gz", images.astype(np.uint8))
    write_idx(mirror / "t10k-labels-idx1-ubyte.gz", np.array([1, 0], np.uint8))
    files = tuple(FileSpec(p.name, hashlib.md5(p.read_bytes()).hexdigest()) for p in sorted(mirror.iterdir()))
    return Source(name="tiny", folder="tiny", description="test", classes=("a", "b"), files=files,
                  mirrors=(mirror.as_uri() + "/",)), images


def test_download_source_and_skip_present(tmp_path, monkeypatch):
    source, _ = _tiny_idx_source(tmp_path)
    folder = download(source, tmp_path / "root")
    assert folder == tmp_path / "root" / "tiny"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f.name for f in source.files)

    def no_network(*args, **kwargs):
        raise AssertionError("a download was started although every file is present and verified")

    monkeypatch.setattr(pooch, "retrieve", no_network)
    assert download(source, tmp_path / "root") == folder


def test_download_replaces_corrupted_file(tmp_path):
    source, _ = _tiny_idx_source(tmp_path)
    folder = download(source, tmp_path / "root")
    target = folder / source.files[0].name
    target.write_bytes(b"corrupted")
    download(source, tmp_path / "root")
    assert hashlib.md5(target.read_bytes()).hexdigest() == source.files[0].md5


def test_download_offline_message(tmp_path):
    source, _ = _tiny_idx_source(tmp_path)
    dead = (tmp_path / "nowhere").as_uri() + "/"
    with pytest.raises(OfflineError) as info:
        download(source, tmp_path / "root", mirrors=[dead])
    msg = str(info.value)
    assert "offline" in msg and str(tmp_path / "root" / "tiny") in msg
    for f in source.files:
        assert f.name in msg and f.md5 in msg
    assert "DEEPCOLLAPSE_DATA" in msg


def test_download_timeout_is_offline(tmp_path, monkeypatch):
    def timeout(*args, **kwargs):
        raise requests.Timeout("timed out")

    monkeypatch.setattr(requests, "get", timeout)
    with pytest.raises(OfflineError, match="t10k-images-idx3-ubyte.gz"):
        download("mnist", tmp_path, files=["t10k-images-idx3-ubyte.gz"])
    with pytest.raises(OfflineError, match=r"cifar-10-python\.tar\.gz \(md5 c58f30108f718f92721af3b95e74349a\)"):
        download("cifar10-python", tmp_path)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no partial file left


def test_download_http_error_is_not_offline(tmp_path, monkeypatch):
    def not_found(url, *args, **kwargs):
        response = requests.Response()
        response.status_code, response.reason, response.url = 404, "Not Found", url
        return response

    monkeypatch.setattr(requests, "get", not_found)
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        download("fashion-mnist", tmp_path, files=["t10k-labels-idx1-ubyte.gz"])
    assert not isinstance(info.value, OfflineError)


def test_download_archive_unpacks_and_verifies(tmp_path, write_fake_cifar):
    build = tmp_path / "build"
    write_fake_cifar(build / "cifar-10-batches-py", n=2)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with tarfile.open(mirror / "fake.tar.gz", "w:gz") as tar:
        tar.add(build / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    md5 = lambda p: hashlib.md5(p.read_bytes()).hexdigest()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    source = Source(
        name="fake-cifar", folder="cifar-10-batches-py", description="test", classes=tuple("abcdefghij"),
        files=tuple(FileSpec(n, md5(build / "cifar-10-batches-py" / n)) for n in names),
        mirrors=(mirror.as_uri() + "/",), archive=FileSpec("fake.tar.gz", md5(mirror / "fake.tar.gz")),
    )
    root = tmp_path / "root"
    folder = download(source, root)
    assert folder == root / "cifar-10-batches-py" and (root / "fake.tar.gz").is_file()
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)
    assert load("cifar10", "train", root=root, verify=False).x.shape == (10, 32, 32, 3)


def test_download_mnist_from_local_mirror(shared_root, tmp_path):
    mirror = (shared_root / "mnist").as_uri() + "/"
    files = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    folder = download("mnist", tmp_path, files=files, mirrors=[mirror])
    assert sorted(p.name for p in folder.iterdir()) == files
    assert load("mnist", "test", root=tmp_path, n_per_class=2).x.shape == (20, 28, 28, 1)


def test_download_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="no download"):
        download("cifar10-jpeg", tmp_path)
    with pytest.raises(ValueError, match="has no file"):
        download("mnist", tmp_path, files=["nope.gz"])
    with pytest.raises(ValueError, match="name must be one of"):
        download("svhn", tmp_path)
    with pytest.raises(ValueError, match="urls"):
        fetch("file:///x", tmp_path / "x")
