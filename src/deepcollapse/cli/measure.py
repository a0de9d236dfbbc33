"""`deepcollapse measure`: collapse metrics of a trained PyTorch model, layer by layer.

    deepcollapse measure --arch resnet18 --weights model.pt --data cifar10 --split test \
        --layers layer1,layer2,layer3,layer4 --classifier fc [--out DIR] [--json]

Streams the data set once through the model (`deepcollapse.torch.collect`), prints a table of the
metrics by depth and writes OUT/metrics.parquet and .csv (tidy: layer, depth, dim, metric, value),
OUT/measure.json (settings, metrics, singular values) and OUT/metrics_vs_depth.png/.pdf.
"""

# ruff: noqa: B008  (typer options as defaults, as in every command module)
from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ._app import app, fail

TABLE_KEYS = ("nc1", "dnc1", "nc1_cdnv", "tcv_norm", "nc2_etf", "nc2_orth", "nc3", "rank_means",
              "rank_features", "dist_rank_K")
COVARIANCE = {"auto": "auto", "yes": True, "no": False}


def _layers(values: list[str] | None) -> list[str]:
    out = []
    for v in values or []:
        out += [p.strip() for p in v.split(",") if p.strip()]
    return out


def _cell(v) -> str:
    import math

    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if float(v).is_integer() and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.4g}"


def depth_table(table, rtol: float) -> Table:
    wide = table.pivot(index=["depth", "layer", "dim"], columns="metric", values="value").sort_index()
    t = Table(title=f"collapse metrics by depth (N = {int(table['N'].iloc[0])}; ranks at rtol {rtol:g})")
    for col in ("layer", "d", *TABLE_KEYS):
        t.add_column(col, justify="right")
    for (_, layer, dim), row in wide.iterrows():
        t.add_row(layer, str(dim), *[_cell(float(row[k])) for k in TABLE_KEYS])
    return t


@app.command("measure")
def measure_cmd(
    arch: str = typer.Option(None, "--arch", help="torchvision model name, e.g. resnet18 (needs torchvision)"),
    weights: Path = typer.Option(None, "--weights", help="state dict for --arch (torch.save(model.state_dict()))"),
    model_file: Path = typer.Option(None, "--model", help="TorchScript file (only its 'output' can be measured)"),
    data: str = typer.Option("cifar10", "--data", help="mnist, fashion-mnist or cifar10 (deepcollapse.data)"),
    split: str = typer.Option("test", "--split", help="train or test"),
    layers: list[str] = typer.Option(None, "--layers", help="named_modules names, comma-separated or repeated; 'output' = the model's output"),
    classifier: str = typer.Option(None, "--classifier", help="linear layer read by the last features (e.g. fc): NC3 at its input"),
    num_classes: int = typer.Option(None, "--num-classes", help="K (default: the data set's)"),
    n_per_class: int = typer.Option(None, "--n-per-class", help="measure this many samples per class (default: all)"),
    batch_size: int = typer.Option(200, "--batch-size", help="images per forward pass"),
    max_batches: int = typer.Option(None, "--max-batches", help="stop after this many batches"),
    capture: str = typer.Option("output", "--capture", help="output or input of each layer"),
    pool: str = typer.Option("avg", "--pool", help="avg (mean over spatial axes) or flatten"),
    covariance: str = typer.Option("auto", "--covariance", help="auto, yes or no: keep the d x d second moment (NC1, feature ranks)"),
    second_pass: bool = typer.Option(False, "--second-pass", help="NC1 of layers kept without the d x d moment, from a second pass (O(dK) memory)"),
    normalize: str = typer.Option("dataset", "--normalize", help="dataset (this split's mean/std), imagenet or none"),
    rtol: float = typer.Option(1e-3, "--rtol", help="relative tolerance of the numerical ranks"),
    data_root: Path = typer.Option(None, "--data-root", help="data folder (default $DEEPCOLLAPSE_DATA)"),
    device: str = typer.Option(None, "--device", help="torch device (default cpu)"),
    out: Path = typer.Option(None, "--out", help="output folder (default results/measure/<model>-<data>-<split>)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object on stdout"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
) -> None:
    """Collapse metrics (NC1, DNC1, CDNV, TCV, NC2, NC3, ranks) of a PyTorch model, layer by layer."""
    names = _layers(layers)
    if not names:
        fail("--layers: give the layers to measure, e.g. --layers layer1,layer2,layer3,layer4")
    if covariance not in COVARIANCE:
        fail(f"--covariance must be one of {', '.join(COVARIANCE)}, got {covariance!r}")
    if not 0 <= rtol < 1:
        fail(f"--rtol must be in [0, 1), got {rtol}")
    if n_per_class is not None and n_per_class < 1:
        fail(f"--n-per-class must be >= 1, got {n_per_class}")
    if out is not None and out.exists() and not out.is_dir():
        fail(f"--out {out} is not a folder")
    try:
        import torch  # noqa: F401
    except ImportError:
        fail("deepcollapse measure needs PyTorch: pip install 'deepcollapse[torch]'")
    from ..data import DatasetNotFoundError
    from ..results import atomic_write, atomic_write_text, dumps
    from ..torch import collect
    from ..torch.measure import dataset_loader, depth_figure, load_model

    try:
        loader, classes = dataset_loader(data, split, data_root, n_per_class, batch_size, normalize)
    except (ValueError, DatasetNotFoundError) as e:
        fail(f"--data {data} --split {split}: {str(e).splitlines()[0]}")
    K = num_classes or len(classes)
    try:
        model = load_model(arch, weights, model_file, K)
        if device is not None:
            model = model.to(device)
        stats = collect(model, loader, names, K, capture=capture, pool=pool, device=device,
                        max_batches=max_batches, covariance=COVARIANCE[covariance], classifier=classifier,
                        second_pass=second_pass, progress=progress and not as_json)
    except (ValueError, TypeError, NotImplementedError, RuntimeError) as e:
        fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    table = stats.table(rtol)
    label = arch or Path(model_file).stem
    out = out or Path("results") / "measure" / f"{label}-{data}-{split}"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "metrics.parquet", table.to_parquet(index=False))
    atomic_write_text(out / "metrics.csv", table.to_csv(index=False))
    record = {"model": {"arch": arch, "weights": str(weights) if weights else None,
                        "model_file": str(model_file) if model_file else None},
              "data": {"name": data, "split": split, "n_per_class": n_per_class, "normalize": normalize,
                       "num_classes": K},
              "settings": {"layers": names, "classifier": classifier, "capture": capture, "pool": pool,
                           "covariance": covariance, "second_pass": second_pass, "rank_rtol": rtol, "batch_size": batch_size,
                           "max_batches": max_batches},
              "info": stats.info, "metrics": stats.metrics(rtol)}
    atomic_write_text(out / "measure.json", dumps(record, indent=2) + "\n")
    from ..plots import save_figure

    save_figure(depth_figure(table, f"{label} on {data} {split} (N = {stats.info['N']})"), out, "metrics_vs_depth")
    if as_json:
        print(dumps(record | {"out": str(out)}))
        return
    console = Console(width=max(120, Console().width))
    console.print(depth_table(table, rtol))
    console.print(f"results: {out}/metrics.parquet, metrics_vs_depth.png")
