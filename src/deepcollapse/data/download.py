"""Download a dataset's official files with pooch: mirrors tried in order, MD5 verified.

`pooch.retrieve` streams each file to a temporary name in the target folder and moves it into place
only after its hash matched, so an interrupted or corrupted download never leaves a file that looks
complete, and a present file with the right hash is not downloaded again. This module adds what a
dataset needs on top: several mirrors per file, file:// mirrors (a local copy), an archive that is
unpacked after it is verified, and, without network access, an error that says which files to put
where.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Sequence

from .checksum import md5_file, verify
from .errors import DownloadError, OfflineError
from .root import ENV_VAR, data_root
from .sources import Source, get_source

USER_AGENT = "deepcollapse-data/0.1 (pooch)"

__all__ = ["DownloadError", "OfflineError", "download", "fetch"]


def _copy_local(url: str, output_file, pooch_=None, check_only: bool = False):
    """A pooch downloader for file:// URLs (a mirror that is a folder on this machine)."""
    path = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    if check_only:
        return path.is_file()
    if not path.is_file():
        raise FileNotFoundError(f"no such file {path}")
    if isinstance(output_file, (str, os.PathLike)):
        shutil.copyfile(path, output_file)
    else:
        with open(path, "rb") as f:
            shutil.copyfileobj(f, output_file, 1 << 20)
    return None


def _downloader(url: str, timeout: float):
    import pooch

    if url.startswith("file://"):
        return _copy_local
    return pooch.HTTPDownloader(timeout=timeout, headers={"User-Agent": USER_AGENT}, progressbar=False)


def _fetch_one(url: str, dest: Path, md5: str | None, timeout: float) -> None:
    import pooch  # imported on first download: it and requests cost 0.1-0.2 s of every start

    pooch.get_logger().setLevel(logging.WARNING)  # pooch logs every download at INFO
    known = f"md5:{md5}" if md5 is not None else None
    pooch.retrieve(url, known_hash=known, fname=dest.name, path=dest.parent,
                   downloader=_downloader(url, timeout))


def fetch(urls: Sequence[str], dest: str | os.PathLike, md5: str | None = None,
          timeout: float = 30.0) -> Path:
    """Download the first of `urls` that works to `dest` (atomically), verifying `md5` if given.

    A file already at `dest` with the right MD5 is kept. Raises OfflineError if every URL failed with
    a network error (no connection, timeout), else DownloadError (e.g. HTTP 404, or a file whose MD5
    does not match), listing each URL and its error.
    """
    import requests

    if isinstance(urls, str) or not urls:
        raise ValueError(f"urls must be a non-empty sequence of URLs, got {urls!r}")
    if timeout <= 0:
        raise ValueError(f"timeout must be positive seconds, got {timeout}")
    dest = Path(dest)
    failures: list[str] = []
    offline = True
    for url in urls:
        try:
            _fetch_one(url, dest, md5, timeout)
            return dest
        except requests.HTTPError as e:  # the server answered: not an offline problem
            offline = False
            status = e.response.status_code if e.response is not None else "?"
            reason = e.response.reason if e.response is not None else e
            failures.append(f"  {url}: HTTP {status} {reason}")
        except ValueError as e:  # pooch: the hash of the downloaded file does not match
            offline = False
            failures.append(f"  {url}: MD5 mismatch ({e})")
        except (requests.ConnectionError, requests.Timeout, FileNotFoundError, TimeoutError) as e:
            failures.append(f"  {url}: {e}")
        except requests.RequestException as e:  # e.g. the connection broke off mid-file
            offline = False
            failures.append(f"  {url}: {type(e).__name__}: {e}")
    what = "could not reach any of" if offline else "could not get a valid file from any of"
    message = f"{dest.name}: {what}\n" + "\n".join(failures)
    raise (OfflineError if offline else DownloadError)(message)


def _placement_help(source: Source, root: Path, missing: Sequence[str]) -> str:
    folder = root / source.folder
    if source.archive is not None:
        where = (
            f"Put {source.archive.name} (md5 {source.archive.md5}) into {root} and call download again "
            f"(it is verified and unpacked there), or unpack it yourself so that {folder} holds:"
        )
    else:
        where = f"Put these files into {folder}:"
    lines = [f"    {name}" + (f"  (md5 {source.file(name).md5})" if source.file(name).md5 else "")
             for name in missing]
    return (
        f"{where}\n" + "\n".join(lines) + "\n"
        f"(from {source.homepage or 'the mirrors above'}, or from an online machine with "
        f"deepcollapse.data.download({source.name!r}, root)), or set {ENV_VAR} to a data root "
        f"whose {source.folder}/ already holds them."
    )


def _is_valid(path: Path, md5: str | None) -> bool:
    return path.is_file() and (md5 is None or md5_file(path) == md5)


def _unpack(archive: Path, root: Path) -> None:
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(root, filter="data")
        else:  # pragma: no cover - Python without extraction filters
            base = root.resolve()
            for member in tar.getmembers():
                target = (root / member.name).resolve()
                if base not in target.parents and target != base or not (member.isfile() or member.isdir()):
                    raise DownloadError(f"refusing to unpack {member.name!r} from {archive}")
            tar.extractall(root)


def download(name: str | Source, root: str | os.PathLike | None = None, *,
             files: Sequence[str] | None = None, mirrors: Sequence[str] | None = None,
             timeout: float = 30.0) -> Path:
    """Download a dataset's files into `<root>/<folder>/` and return that folder.

    name:    a key of sources.SOURCES ("mnist", "fashion-mnist", "cifar10-python") or a Source.
    root:    the data root (explicit > $DEEPCOLLAPSE_DATA > ~/.cache/deepcollapse/data).
    files:   only these file names (default: all of the source's files).
    mirrors: base URLs to use instead of the source's own, tried in order (file://, http(s)://).
    Files already present with the right MD5 are kept; a damaged one is downloaded again. Each file
    is written atomically and verified.
    """
    source = get_source(name) if isinstance(name, str) else name
    mirrors = tuple(mirrors) if mirrors is not None else source.mirrors
    root = data_root(root)
    folder = root / source.folder
    if not mirrors:
        raise ValueError(f"{source.name} has no download; {source.note}")
    wanted = [f.name for f in source.files] if files is None else list(files)
    for name_ in wanted:
        source.file(name_)  # raises ValueError on an unknown file name
    missing = [n for n in wanted if not _is_valid(folder / n, source.file(n).md5)]
    if not missing:
        return folder

    def fail(error: DownloadError) -> None:
        reason = "This machine seems to be offline." if isinstance(error, OfflineError) else ""
        raise type(error)(
            f"Could not download {source.name}. {error}\n{reason} "
            f"{_placement_help(source, root, missing)}"
        ) from error

    if source.archive is not None:
        archive = root / source.archive.name
        if not _is_valid(archive, source.archive.md5):
            try:
                fetch([m + source.archive.name for m in mirrors], archive, source.archive.md5, timeout)
            except DownloadError as e:
                fail(e)
        _unpack(archive, root)
        for n in missing:
            spec = source.file(n)
            if spec.md5 is not None:
                verify(folder / n, spec.md5)
        return folder

    for n in list(missing):
        spec = source.file(n)
        try:
            fetch([m + n for m in mirrors], folder / n, spec.md5, timeout)
        except DownloadError as e:
            fail(e)
        missing.remove(n)
    return folder
