"""Data: canonical datasets (sources, download, checksums), file readers and synthetic clusters.

    load(name, split, ...)      -> Dataset(x float32 N x H x W x C in [0, 1], y, classes, ...)
    standardize(x, mean, std)   per-channel standardisation (returns the stats)
    download(name, root)        fetch the official files, MD5-verified
    gaussian_clusters(K, d, n, sigma, seed) -> (X d x N, y), columns class by class
"""

from .checksum import ChecksumError, md5_file, verify
from .cifar import CIFARFormatError, read_cifar_batch, read_cifar_batches, read_cifar_meta
from .datasets import (
    Dataset,
    DatasetNotFoundError,
    as_columns,
    balanced_indices,
    load,
    standardize,
)
from .download import DownloadError, OfflineError, download, fetch
from .gaussian import cluster_means, gaussian_clusters
from .idx import IDXFormatError, read_idx, read_idx_images, read_idx_labels, write_idx
from .imagefolder import list_image_folder, read_image_folder
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
    "CIFAR10_CLASSES", "CIFARFormatError", "ChecksumError", "DEFAULT_ROOT", "Dataset",
    "DatasetNotFoundError", "DownloadError", "ENV_VAR", "FASHION_MNIST_CLASSES", "FileSpec",
    "IDXFormatError", "MNIST_CLASSES", "OfflineError", "SOURCES", "SUBFOLDERS", "Source",
    "as_columns", "balanced_indices", "cluster_means", "data_root", "dataset_dir", "download",
    "fetch", "gaussian_clusters", "get_source", "list_image_folder", "load", "md5_file",
    "read_cifar_batch", "read_cifar_batches", "read_cifar_meta", "read_idx", "read_idx_images",
    "read_idx_labels", "read_image_folder", "standardize", "verify", "write_idx",
]
