"""The full-size real-network runs and the engine timings, prepared for one GPU in at most 10 minutes.

    python benchmarks/gpu_run.py --out DIR [--budget 480]     # on a GPU (benchmarks/gpu_run.sh)
    python benchmarks/gpu_run.py --out DIR --tiny             # the CPU path (CI): seconds

In one call, within `--budget` seconds of wall time:
  1. DUFM engine run-steps/s at 10, 100 and 1,000 lanes (the quickstart shape K = 10, n = 5, L = 4,
     width 30; one compiled chunk, timed after its compilation);
  2. ResNet-20 + head training images/s in JAX (`nets.train.make_epoch`, what a network run executes)
     and in PyTorch eager on the same device (`benchmarks/resnet_throughput.py`'s reference);
  3. the largest configuration of garrod-fig7 (MNIST, ReLU head L = 4) and of garrod-fig3's CIFAR-10
     ReLU row that fits the time left: the paper's 5,000 samples per class and batch 10,000, and as
     many of the paper's 2,000 epochs as the measured images/s allow (each run says how many it did);
     each run is the project's normal run path (`train.train(NetConfig)`, a run record), and its
     figure and summary are written next to the timings.
Everything lands in DIR: results.json (timings, the chosen configs, every run's summary),
<run>.png (the training figure of each run) and log.txt. Data: $DEEPCOLLAPSE_DATA (gpu_run.sh points
it at the carried folder). Every step is skipped with a note, never fatal, when its time is up.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import traceback
from pathlib import Path

import jax
import numpy as np

T0 = time.perf_counter()


def elapsed() -> float:
    return time.perf_counter() - T0


def log(msg: str, out: Path) -> None:
    line = f"[{elapsed():7.1f} s] {msg}"
    print(line, flush=True)
    with open(out / "log.txt", "a") as f:
        f.write(line + "\n")


def engine_rates(lane_counts, steps: int) -> list[dict]:
    """Run-steps/s of one compiled DUFM chunk per lane count (quickstart shape)."""
    from deepcollapse.config import DUFMConfig
    from deepcollapse.engine import Program

    rows = []
    for P in lane_counts:
        cfg = DUFMConfig(K=10, n=5, L=4, width=30, lam_H=0.004, lam_W=0.004, lr=0.5, init_scale=0.3,
                         steps=steps, log_every=steps, seeds=P)
        prog = Program([cfg])
        state = prog.init()
        t = time.perf_counter()
        state = prog.chunk(state, 0)
        compile_s = time.perf_counter() - t
        t = time.perf_counter()
        prog.chunk(state, 1)
        run_s = time.perf_counter() - t
        rows.append({"lanes": P, "steps": steps, "run_steps_per_s": P * steps / run_s,
                     "first_chunk_s": compile_s, "chunk_s": run_s})
    return rows


def resnet_rates(batches, image, warmup: int, iters: int) -> list[dict]:
    """ResNet-20 + 2-layer head training images/s, JAX and PyTorch eager, per batch size."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("resnet_throughput", Path(__file__).with_name("resnet_throughput.py"))
    rt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rt)
    rows = []
    for B in batches:
        j = rt.jax_throughput(B, image, 10, 2, 64, warmup, iters)
        try:
            t = rt.torch_throughput(B, image, 10, 2, 64, warmup, iters, device=_torch_device())
        except Exception as e:  # noqa: BLE001 - the reference is optional
            t = None
            print(f"torch reference failed: {e}")
        rows.append({"batch": B, "image": list(image), "jax_img_per_s": j, "torch_img_per_s": t,
                     "jax_over_torch": (j / t) if t else None})
    return rows


def _torch_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def net_run(name: str, base, img_per_s: float, seconds: float, out: Path, max_epochs: int) -> dict:
    """Train `base` (a NetConfig) for as many epochs as `seconds` allow at `img_per_s`, up to max_epochs."""
    from deepcollapse.config import NetConfig
    from deepcollapse.plots import plot_run
    from deepcollapse.train import train

    N = base.K * base.n_per_class
    epochs = int(max(1, min(max_epochs, seconds * img_per_s / N)))
    every = max(1, min(base.eval_every, epochs // 10 or 1))
    cfg = NetConfig(**{**base.to_dict(), "epochs": epochs, "eval_every": every, "split": "train"})
    t = time.perf_counter()
    res = train(cfg, out=Path(tempfile.gettempdir()) / "deepcollapse-gpu-runs")  # records stay off $OUT (8 files)
    wall = time.perf_counter() - t
    plot_run(res, out, name)
    keep = ("loss", "fit", "reg", "train_accuracy", "loss_dnc", "loss_lowrank", "logit_rank_1e6", "ranks",
            "found_dnc", "converged", "converged_at", "epochs", "steps", "N", "n_per_class")
    return {"name": name, "config": cfg.to_dict(), "epochs_of_paper": max_epochs, "wall_s": wall,
            "summary": [{k: row.get(k) for k in keep} | {"logit_singular_values": row["singular_values"][f"Z{cfg.L}"]}
                        for row in res.summary]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--budget", type=float, default=480.0, help="seconds of wall time for everything")
    p.add_argument("--tiny", action="store_true", help="the CPU path: tiny sizes, seconds")
    a = p.parse_args(argv)
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    dev = jax.devices()[0]
    results = {"jax": jax.__version__, "device": f"{dev.platform} ({dev.device_kind})", "tiny": a.tiny,
               "budget_s": a.budget}
    log(f"JAX {jax.__version__} on {results['device']}", out)

    def step(key, fn):
        try:
            results[key] = fn()
        except Exception as e:  # noqa: BLE001 - every step is optional; the note says why it failed
            results[key] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
        log(f"{key}: {json.dumps(results[key], default=str)[:300]}", out)
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))

    step("engine", lambda: engine_rates((2, 4) if a.tiny else (10, 100, 1000), 50 if a.tiny else 2000))
    step("resnet", lambda: resnet_rates((8,) if a.tiny else (512, 2048), (28, 28, 1) if a.tiny else (32, 32, 3),
                                        1, 1 if a.tiny else 5))

    from deepcollapse.experiments.nets_figures import net_configs

    fig7 = net_configs("garrod-fig7", "smoke" if a.tiny else "full")[0]
    fig3 = [c for c in net_configs("garrod-fig3", "smoke" if a.tiny else "full") if c.activation == "relu"][0]
    rate = 0.0
    if isinstance(results.get("resnet"), list):
        big = results["resnet"][-1]
        rate = big["jax_img_per_s"]
    for name, cfg, share in (("garrod-fig7", fig7, 0.5), ("garrod-fig3-cifar10-relu", fig3, 1.0)):
        left = a.budget - elapsed() - 30.0  # margin for the figure and the files
        if left <= 0 or rate <= 0:
            results[name] = {"skipped": f"no time left ({left:.0f} s) or no measured rate"}
            continue
        step(name, lambda cfg=cfg, left=left, name=name, share=share: net_run(
            name, cfg, rate, left * share, out, cfg.epochs))
    results["wall_s"] = elapsed()
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    log("done", out)


if __name__ == "__main__":
    main()
