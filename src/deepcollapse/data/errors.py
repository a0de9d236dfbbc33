"""The data module's errors: one base class, `DataError`, so a caller (the CLI) catches them all.

Each error's message names the file it is about and says what to do. Each also derives from the
builtin that older code caught (a missing dataset is a FileNotFoundError, a damaged file a
ValueError, a failed download an OSError), so nothing that caught those breaks.
"""

from __future__ import annotations


class DataError(Exception):
    """A dataset could not be found, downloaded, verified or read."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """A dataset's files are not under the data root; the message says where to put them."""


class DataFormatError(DataError, ValueError):
    """A data file exists but is damaged or not in the expected format."""


class DownloadError(DataError, OSError):
    """No mirror delivered a file (or delivered a file with the wrong checksum)."""


class OfflineError(DownloadError):
    """No mirror could be reached: this machine seems to have no network access."""


def error_names() -> set[str]:
    """Names of DataError and of every subclass defined so far (to recognise one in an error text
    that crossed a process boundary as "ClassName: message", as sweep points report them)."""
    names, todo = set(), [DataError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names
