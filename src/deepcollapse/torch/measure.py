"""What `deepcollapse measure` needs besides `collect`: a model from files, a data set as a loader,
and the figure of every metric against depth.

    load_model(arch=None, weights=None, model_file=None, num_classes=10) -> torch.nn.Module
    dataset_loader(name, split, ...) -> (DataLoader of NCHW float32 images, class names)
    depth_figure(table) -> matplotlib figure (metric vs depth, one panel per family)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NORMALIZE = ("dataset", "imagenet", "none")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _state_dict(obj) -> dict:
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise ValueError(f"the weights file holds a {type(obj).__name__}, not a state dict")  # noqa: TRY004
    return {k.removeprefix("module."): v for k, v in obj.items()}  # DataParallel / DDP prefixes


def load_model(arch: str | None = None, weights: str | Path | None = None,
               model_file: str | Path | None = None, num_classes: int = 10):
    """A model in eval mode on the CPU.

    arch: a torchvision model name (`torchvision.models.get_model`, e.g. "resnet18") built with
    `num_classes` outputs, optionally loaded from `weights` (a state dict saved with torch.save,
    possibly under "state_dict"/"model"; "module." prefixes are dropped; loaded with
    weights_only=True, so no code in the file runs). model_file: a TorchScript file (torch.jit.save):
    TorchScript runs no Python hooks, so only its "output" can be measured.
    """
    import torch

    if (arch is None) == (model_file is None):
        raise ValueError("give either --arch (a torchvision model, with --weights) or --model (a TorchScript file)")
    if model_file is not None:
        if weights is not None:
            raise ValueError("--weights goes with --arch; a TorchScript --model file holds its weights")
        path = Path(model_file)
        if not path.is_file():
            raise ValueError(f"model file not found: {path}")
        try:
            return torch.jit.load(str(path), map_location="cpu").eval()
        except (RuntimeError, ValueError) as e:
            raise ValueError(f"{path} is not a TorchScript file ({str(e).splitlines()[0][:120]}); "
                             "for a state dict use --arch NAME --weights FILE") from None
    try:
        import torchvision
    except ImportError as e:
        raise ValueError(f"--arch needs torchvision ({e}); pip install torchvision") from None
    available = set(torchvision.models.list_models())
    if arch not in available:
        import difflib

        close = difflib.get_close_matches(arch, sorted(available), n=4)
        raise ValueError(f"--arch {arch!r} is not a torchvision model (closest: {', '.join(close) or 'none'})")
    model = torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise ValueError(f"weights file not found: {path}")
        sd = _state_dict(torch.load(str(path), map_location="cpu", weights_only=True))
        missing, unexpected = model.load_state_dict(sd, strict=False)
        if missing or unexpected:
            raise ValueError(f"{path} does not fit {arch} with {num_classes} classes: missing "
                             f"{list(missing)[:4]}, unexpected {list(unexpected)[:4]}")
    return model.eval()


def dataset_loader(name: str, split: str = "test", root=None, n_per_class: int | None = None,
                   batch_size: int = 200, normalize: str = "dataset", seed: int = 0):
    """(DataLoader of (x NCHW float32, y int64), class names) for a data set `deepcollapse.data.load`
    reads. normalize: "dataset" (per-channel standardisation with this split's own mean and std,
    `data.standardize`), "imagenet" (the torchvision constants; 3 channels) or "none" ([0, 1])."""
    import torch

    from deepcollapse.data import load, standardize

    if normalize not in NORMALIZE:
        raise ValueError(f"normalize must be one of {NORMALIZE}, got {normalize!r}")
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    ds = load(name, split, root, n_per_class, seed=seed)
    x = ds.x
    if normalize == "dataset":
        x = standardize(x)[0]
    elif normalize == "imagenet":
        if x.shape[-1] != 3:
            raise ValueError(f"normalize=imagenet needs 3 channels, {name} has {x.shape[-1]}")
        x = standardize(x, np.asarray(IMAGENET_MEAN), np.asarray(IMAGENET_STD))[0]
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    yt = torch.from_numpy(ds.y)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xt, yt), batch_size=batch_size,
                                         shuffle=False)
    return loader, list(ds.classes)


PANELS = (
    ("within-class variability", ("nc1", "dnc1", "nc1_cdnv", "tcv_norm"), True),
    ("NC2 / NC3: distance to frame / classifier", ("nc2_etf", "nc2_orth", "nc3"), False),
    ("numerical rank (rtol)", ("rank_means", "rank_centred_means", "rank_features"), False),
    ("features: distance to rank K", ("dist_rank_K",), True),
)


def depth_figure(table, title: str = ""):
    """Every metric of a `ModelStats.table()` against depth: NC1 family and TCV (log), NC2, ranks,
    distance of the features to rank K (log); NC3 (a star) where a classifier was given."""
    from deepcollapse.plots import pyplot

    plt = pyplot()
    wide = table.pivot(index=["depth", "layer"], columns="metric", values="value").sort_index()
    depth = wide.index.get_level_values("depth").to_numpy()
    names = list(wide.index.get_level_values("layer"))
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.8))
    for ax, (label, keys, log) in zip(axes, PANELS):
        for key in keys:
            if key in wide and np.isfinite(wide[key].to_numpy(float)).any():
                v = wide[key].to_numpy(float)
                if log:
                    v = np.where(v > 0, v, np.nan)
                style = {"marker": "*", "ls": "none", "ms": 12, "color": "k"} if key == "nc3" else {"marker": "o"}
                ax.plot(depth, v, label=key, **style)
        if log:
            ax.set_yscale("log")
        ax.set_title(label, fontsize=10)
        ax.set_xticks(depth, names, rotation=45, ha="right", fontsize=8)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
