"""Data: canonical datasets (sources, download, checksums), file readers and synthetic clusters.

    load(name, split, ...)      -> Dataset(x float32 N x H x W x C in [0, 1], y, classes, ...)
    standardize(x, mean, std)   per-channel standardisation (returns the stats)
    download(name, root)        fetch the official files (pooch), MD5-verified
    DataError                   base of every error here (not found, damaged, download failed)
    gaussian_clusters(K, d, n, sigma, seed) -> (X d x N, y), columns class by class
"""

from .checksum import ChecksumError, md5_file, verify
from .cifar import (
    CIFARFormatError,
    read_cifar_batch,
    read_cifar_batches,
    read_cifar_meta,
)
from .datasets import (
    Dataset,
    as_columns,
    balanced_indices,
    load,
    standardize,
)
from .download import download, fetch
from .errors import (
    DataError,
    DataFormatError,
    DatasetNotFoundError,
    DownloadError,
    OfflineError,
)
from .gaussian import cluster_means, gaussian_clusters
from .idx import IDXFormatError, read_idx, read_idx_images, read_idx_labels, write_idx
from .imagefolder import ImageFormatError, list_image_folder, read_image_folder
from .root import DEFAULT_ROOT, ENV_VAR, SUBFOLDERS, data_root, dataset_dir
from .sources import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    MNIST_CLASSES,
    SOURCES,
    FileSpec,
    Source,
    get_source,
)

__all__ = [
    "CIFAR10_CLASSES",
    "DEFAULT_ROOT",
    "ENV_VAR",
    "FASHION_MNIST_CLASSES",
    "MNIST_CLASSES",
    "SOURCES",
    "SUBFOLDERS",
    "CIFARFormatError",
    "ChecksumError",
    "DataError",
    "DataFormatError",
    "Dataset",
    "DatasetNotFoundError",
    "DownloadError",
    "FileSpec",
    "IDXFormatError",
    "ImageFormatError",
    "OfflineError",
    "Source",
    "as_columns",
    "balanced_indices",
    "cluster_means",
    "data_root",
    "dataset_dir",
    "download",
    "fetch",
    "gaussian_clusters",
    "get_source",
    "list_image_folder",
    "load",
    "md5_file",
    "read_cifar_batch",
    "read_cifar_batches",
    "read_cifar_meta",
    "read_idx",
    "read_idx_images",
    "read_idx_labels",
    "read_image_folder",
    "standardize",
    "verify",
    "write_idx",
]
