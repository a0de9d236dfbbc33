"""Where the data lives: the data root and the per-dataset subfolders.

Resolution order of the data root: an explicit path argument, else the environment variable
``DEEPCOLLAPSE_DATA``, else ``~/.cache/deepcollapse/data``. Below the root every dataset has one
subfolder, named as in the project's shared copy (``../shared/datasets``):

    mnist/                 the four IDX .gz files of MNIST
    fashion-mnist/         the four IDX .gz files of Fashion-MNIST
    cifar-10-batches-py/   the official CIFAR-10 python-pickle batches
    cifar10-jpeg/          CIFAR-10 as an image folder, {train,test}/<class>/*.jpg
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "DEEPCOLLAPSE_DATA"
DEFAULT_ROOT = Path("~/.cache/deepcollapse/data")

# Source name (see sources.SOURCES) -> subfolder of the data root.
SUBFOLDERS: dict[str, str] = {
    "mnist": "mnist",
    "fashion-mnist": "fashion-mnist",
    "cifar10-python": "cifar-10-batches-py",
    "cifar10-jpeg": "cifar10-jpeg",
}


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: `root` if given, else $DEEPCOLLAPSE_DATA if set and non-empty, else the default.

    `~` is expanded; the folder need not exist.
    """
    if root is not None:
        if isinstance(root, str) and not root.strip():
            raise ValueError("root must be a non-empty path or None (then $DEEPCOLLAPSE_DATA or the default)")
        return Path(root).expanduser()
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    return DEFAULT_ROOT.expanduser()


def dataset_dir(source: str, root: str | os.PathLike | None = None) -> Path:
    """The folder of one source (a key of SUBFOLDERS) below the resolved data root."""
    if source not in SUBFOLDERS:
        raise ValueError(f"source must be one of {sorted(SUBFOLDERS)}, got {source!r}")
    return data_root(root) / SUBFOLDERS[source]
