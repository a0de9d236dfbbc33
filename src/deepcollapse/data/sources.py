"""The canonical datasets as data: file names, MD5 sums, download mirrors and class names.

Nothing here does I/O. download.py fetches a source's files, datasets.py reads them. The MD5 sums
are those of the official files (MNIST, Fashion-MNIST: the four IDX .gz files; CIFAR-10: the
"python version" archive and the batches it unpacks to).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .root import SUBFOLDERS


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset: its name in the dataset's folder and its MD5 (None: no official sum)."""

    name: str
    md5: str | None


@dataclass(frozen=True)
class Source:
    """A dataset as published: what files make it up and where to get them.

    files:   the files expected in the dataset's folder, with their MD5 sums.
    splits:  split name -> the names (from `files`) that make up that split.
    mirrors: base URLs, tried in order; a file's URL is mirror + file name. Empty: no download.
    archive: if set, the file downloaded from the mirrors is this archive, saved in the data root and
             unpacked there (it must unpack to the dataset's folder); otherwise `files` are
             downloaded one by one into the dataset's folder.
    note:    what the checksums do and do not guarantee.
    """

    name: str
    folder: str
    description: str
    classes: tuple[str, ...]
    files: tuple[FileSpec, ...] = ()
    splits: dict[str, tuple[str, ...]] = field(default_factory=dict)
    mirrors: tuple[str, ...] = ()
    archive: FileSpec | None = None
    homepage: str = ""
    note: str = ""

    def file(self, name: str) -> FileSpec:
        """The FileSpec called `name`."""
        for f in self.files:
            if f.name == name:
                return f
        raise ValueError(f"{self.name} has no file {name!r}; its files are {[f.name for f in self.files]}")

    @property
    def downloadable(self) -> bool:
        return bool(self.mirrors)


MNIST_CLASSES = tuple(str(k) for k in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# CIFAR-10's canonical label order (label k is CIFAR10_CLASSES[k], as in batches.meta).
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)

_IDX_SPLITS = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

MNIST = Source(
    name="mnist",
    folder=SUBFOLDERS["mnist"],
    description="MNIST handwritten digits, 60,000 train + 10,000 test, 28x28 grey, 10 classes",
    classes=MNIST_CLASSES,
    files=(
        FileSpec("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        FileSpec("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        FileSpec("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        FileSpec("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ),
    splits=_IDX_SPLITS,
    # The S3 mirror that torchvision uses first; the original site as a fallback.
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    homepage="http://yann.lecun.com/exdb/mnist/",
    note="MD5 sums of the four official IDX .gz files.",
)

FASHION_MNIST = Source(
    name="fashion-mnist",
    folder=SUBFOLDERS["fashion-mnist"],
    description="Fashion-MNIST (Zalando), 60,000 train + 10,000 test, 28x28 grey, 10 classes",
    classes=FASHION_MNIST_CLASSES,
    files=(
        FileSpec("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        FileSpec("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        FileSpec("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        FileSpec("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ),
    splits=_IDX_SPLITS,
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    homepage="https://github.com/zalandoresearch/fashion-mnist",
    note="MD5 sums of the four official IDX .gz files.",
)

CIFAR10_PYTHON = Source(
    name="cifar10-python",
    folder=SUBFOLDERS["cifar10-python"],
    description="CIFAR-10, 50,000 train + 10,000 test, 32x32 RGB, 10 classes (official python-pickle batches)",
    classes=CIFAR10_CLASSES,
    files=(
        FileSpec("data_batch_1", "c99cafc152244af753f735de768cd75f"),
        FileSpec("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
        FileSpec("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
        FileSpec("data_batch_4", "634d18415352ddfa80567beed471001a"),
        FileSpec("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        FileSpec("test_batch", "40351d587109b95175f43aff81a1287e"),
        FileSpec("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
    ),
    splits={
        "train": ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"),
        "test": ("test_batch",),
    },
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
    archive=FileSpec("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
    homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
    note=(
        "MD5 of the official archive cifar-10-python.tar.gz and of the batches it unpacks to "
        "(cifar-10-batches-py/)."
    ),
)

CIFAR10_JPEG = Source(
    name="cifar10-jpeg",
    folder=SUBFOLDERS["cifar10-jpeg"],
    description=(
        "CIFAR-10 as an image folder {train,test}/<class name>/*.jpg (50,000 train, 5,000 per class, "
        "+ 10,000 test), 32x32 RGB"
    ),
    classes=CIFAR10_CLASSES,
    splits={"train": ("train",), "test": ("test",)},
    note=(
        "NOT the official files and NOT verified: a JPEG re-encoded copy (the project's shared "
        "datasets folder). Pixel values differ slightly from the official CIFAR-10 and the original "
        "order is lost, so results on it are close to, not identical with, results on the official "
        "data. There is no download and no checksum; for exact CIFAR-10 use the 'cifar10-python' "
        "source (download('cifar10-python'))."
    ),
)

SOURCES: dict[str, Source] = {s.name: s for s in (MNIST, FASHION_MNIST, CIFAR10_PYTHON, CIFAR10_JPEG)}


def get_source(name: str) -> Source:
    """The Source called `name` (a key of SOURCES)."""
    if name not in SOURCES:
        raise ValueError(f"name must be one of {sorted(SOURCES)}, got {name!r}")
    return SOURCES[name]
