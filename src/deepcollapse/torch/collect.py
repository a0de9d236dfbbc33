"""Stream a PyTorch model over a data loader and keep the class statistics of named layers.

`collect` registers one forward hook per layer (a forward pre-hook for capture="input", so that an
in-place activation cannot change the input before it is read), runs the model in eval mode under
`torch.no_grad`, pools every captured tensor to B x D (`pools`), copies it off the graph and adds it
to that layer's `deepcollapse.stats.StreamStats` (float64 class sums, counts, per-class squared
norms and, when kept, the d x d second moment): the same statistics, and the same metrics, as the
project's own networks (`nets.train.evaluate`) and the DUFM. The features themselves are never
stored. Hooks are removed and every module's training flag is restored afterwards, also on error.
"""

from __future__ import annotations

import numpy as np

from deepcollapse.stats import ModelStats, projection_basis, stream_batches

from .layers import OUTPUT, find_modules
from .pools import pool_features

CAPTURES = ("output", "input")


def _check_args(num_classes, capture, covariance, max_batches):
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
    if capture not in CAPTURES:
        raise ValueError(f"capture must be one of {CAPTURES}, got {capture!r}")
    if covariance not in (True, False, "auto"):
        raise ValueError(f"covariance must be True, False or 'auto', got {covariance!r}")
    if max_batches is not None and (isinstance(max_batches, bool) or not isinstance(max_batches, int)
                                    or max_batches < 1):
        raise ValueError(f"max_batches must be a positive int or None, got {max_batches!r}")


def _host_copy(t, pool):
    """Pooled B x D features as a float32/float64 NumPy array that owns its memory."""
    import torch

    f = pool_features(t.detach(), pool)
    dtype = torch.float64 if f.dtype == torch.float64 else torch.float32
    return f.to("cpu", dtype=dtype, copy=True).numpy()


def _split_batch(batch):
    if isinstance(batch, dict):
        raise TypeError("the loader must yield (inputs, labels) pairs, got a dict")
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise TypeError(f"the loader must yield (inputs, labels) pairs, got {type(batch).__name__}")
    return batch[0], batch[1]


def _labels(y) -> np.ndarray:
    """Labels as a NumPy array (checked by `stats.stream_batches`)."""
    return np.asarray(y.cpu() if hasattr(y, "cpu") else y)


def _progress(enabled: bool, total):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(TextColumn("collect"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    disable=not enabled, transient=True)


def collect(model, loader, layers, num_classes: int, *, capture: str = "output", pool="avg",
            device=None, max_batches: int | None = None, covariance="auto", classifier: str | None = None,
            second_pass: bool = False, progress: bool = True) -> ModelStats:
    """Streamed class statistics of every named layer of a PyTorch `model` over `loader`.

    model:       a `torch.nn.Module` (hooks need Python modules: a TorchScript module can only be
                 measured at "output").
    loader:      an iterable of (inputs, labels) batches (e.g. a `torch.utils.data.DataLoader`);
                 labels are class indices 0..num_classes-1.
    layers:      `named_modules` names in depth order, e.g. ["layer1", "layer2", "layer3", "layer4"];
                 "output" is the model's return value. Unknown names raise ValueError with the
                 closest valid names.
    capture:     "output" (what the module returns) or "input" (its first positional input).
    pool:        "avg" (mean over the axes after the channel axis), "flatten" or a callable
                 tensor -> B x D (`pools`).
    device:      where the inputs are sent (the model must be there already); None: the device of the
                 model's first parameter (CPU for a model without parameters).
    max_batches: stop after this many batches (None: the whole loader).
    covariance:  keep the d x d second moment (needed for NC1 = tr(Sigma_W Sigma_B^+)/K and the
                 feature ranks): True, False, or "auto" (layers of at most
                 `stats.MAX_AUTO_COV_DIM` = 2048 features).
    classifier:  the name of the linear layer that reads the last features (e.g. "fc"): its input is
                 collected too, as layer "<classifier>:input", and NC3 is measured there against its
                 weight (K x d).
    second_pass: for the layers kept without their second moment, run the loader a second time and
                 accumulate the within-class scatter projected onto the span of their class means
                 (`stats.projection_basis`, r <= K dimensions): NC1 exactly, in O(dK) memory, for
                 one more forward pass. Needs a deterministic loader and model (no random
                 augmentation): the class sums of both passes must agree, else ValueError.
    progress:    show a progress bar.

    Returns a `deepcollapse.stats.ModelStats`: `.metrics()` (every metric of every layer, the
    README's names) and `.table()` (tidy pandas table). The model runs in eval mode under no_grad;
    every module's training flag is restored afterwards.
    """
    import torch

    _check_args(num_classes, capture, covariance, max_batches)
    K = int(num_classes)
    layer_names = [layers] if isinstance(layers, str) else list(layers)
    modules = find_modules(model, layer_names)
    captures = {name: capture for name in layer_names}
    W = None
    if classifier is not None:
        head = find_modules(model, [classifier])[classifier]
        weight = getattr(head, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.ndim != 2 or weight.shape[0] != K:
            raise ValueError(f"classifier {classifier!r} must be a linear layer with a K x d weight "
                             f"(K = {K}), got weight of shape {tuple(getattr(weight, 'shape', ()))}")
        W = weight.detach().to("cpu", torch.float64).numpy().copy()
        key = f"{classifier}:input"
        if key not in modules:  # in depth order: just before the model's output, if that is measured
            at = layer_names.index(OUTPUT) if OUTPUT in layer_names else len(layer_names)
            layer_names.insert(at, key)
            modules[key] = head
            captures[key] = "input"
    if device is None:
        param = next(iter(model.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")

    captured: dict = {}
    handles = []

    def store(name, t):
        if name in captured:
            raise ValueError(f"layer {name!r} ran more than once in one forward pass (a module reused, e.g. "
                             "a shared ReLU); collect a module that runs once, e.g. its parent block")
        captured[name] = _host_copy(t, pool)

    def out_hook(name):
        def hook(module, args, output):
            store(name, output)
        return hook

    def in_hook(name):
        def hook(module, args):
            if not args:
                raise ValueError(f"layer {name!r} got no positional input to capture")
            store(name, args[0])
        return hook

    modes = {m: m.training for m in model.modules()}
    total = None
    if hasattr(loader, "__len__"):
        total = len(loader) if max_batches is None else min(len(loader), max_batches)

    def feature_batches(bar, task, names):
        for b, batch in enumerate(loader):
            if max_batches is not None and b >= max_batches:
                return
            x, y = _split_batch(batch)
            y = _labels(y)
            captured.clear()
            if isinstance(x, torch.Tensor):
                x = x.to(device)
            out = model(x)
            if OUTPUT in modules:
                captured[OUTPUT] = _host_copy(out, pool)
            missing = [n for n in layer_names if n not in captured]
            if missing:
                raise ValueError(f"layers {missing} did not run in the model's forward pass")
            yield {n: captured[n] for n in names}, y
            bar.advance(task)

    try:
        for name in layer_names:
            if name == OUTPUT:
                continue
            mod = modules[name]
            try:
                if captures[name] == "input":
                    handles.append(mod.register_forward_pre_hook(in_hook(name)))
                else:
                    handles.append(mod.register_forward_hook(out_hook(name)))
            except (NotImplementedError, RuntimeError):  # torch.jit.ScriptModule
                raise ValueError(f"layer {name!r}: a TorchScript module runs no Python hooks; only "
                                 f"'{OUTPUT}' (the model's output) can be measured") from None
        model.eval()
        with torch.no_grad(), _progress(progress, total) as bar:
            task = bar.add_task("collect", total=total)
            cls = None if W is None else (f"{classifier}:input", W)
            stats = stream_batches(feature_batches(bar, task, layer_names), K, covariance, cls)
            lean = [n for n, st in stats.layers.items() if st.second_moment is None]
            if second_pass and lean:
                bases = {n: projection_basis(stats.layers[n].finalize()) for n in lean}
                task = bar.add_task("second pass", total=total)
                again = stream_batches(feature_batches(bar, task, lean), K, False, None, bases)
                for n in lean:
                    a, b = np.asarray(stats.layers[n].class_sums), np.asarray(again.layers[n].class_sums)
                    if not np.allclose(a, b, rtol=1e-6, atol=1e-9 * np.abs(a).max()):
                        raise ValueError(f"second pass: layer {n!r} gave other features than the first "
                                         "(random augmentation, or a loader that yields other samples each pass?)")
                    stats.layers[n] = again.layers[n]
                    stats.info["covariance"][n] = "projected"
    finally:
        for h in handles:
            h.remove()
        for m, flag in modes.items():
            m.train(flag)
    stats.info.update({"capture": dict(captures),
                       "pool": pool if isinstance(pool, str) else getattr(pool, "__name__", "callable")})
    return stats
