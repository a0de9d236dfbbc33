"""DUFM training speed: the engine's steady state against this machine's matmul peak, and a user's
`deepcollapse train` end to end against the per-run eager PyTorch loop the field writes.

    python benchmarks/train_throughput.py [--steps 4000] [--eager-steps 2000] [--full-eager]

Measured in the same run, so that the ratios hold on a shared machine:
- **peak**: a jitted float32 matmul, warm, best of several sizes and repeats (GFLOP/s);
- **steady state**: one compiled chunk of `engine.Program` (K=10, n=50, L=4, MSE, ReLU) at width 30
  x 1 and 10 seeds and width 256 x 1 seed, best of 3 after a warm-up: run-steps/s, GFLOP/s and % of
  the peak; the 10-seed row also with one CPU device (DEEPCOLLAPSE_CPU_DEVICES=1) next to the default
  (lane groups spread over one CPU device per core, `engine.lane_groups`); and the census shape
  (n = 5, 1,000 lanes) in groups (`engine.lane_groups`) and, as the baseline, in one group per device
  (the engine's earlier layout); each in a fresh process; and, as the ceiling of the step at the
  10-seed and the width-256 shape, the same matmuls and update alone (`matmuls_rate`);
- **end to end**: `deepcollapse train benchmarks/speed.yaml` (10 seeds, 20,000 steps, figure included)
  as a user runs it, in a fresh process: first with an empty compilation cache (first-time compile),
  then again with the cache filled (the fixed cost of a run whose programs were compiled before is
  the same command at 500 steps, also without its helper process, `cli.helper`);
- **eager baseline**: the same 10 runs as a per-run PyTorch autograd loop, one run after the other
  (steps/s measured over --eager-steps of one run and scaled to 10 x 20,000 steps, or run in full
  with --full-eager).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import deepcollapse  # noqa: F401  (sets the CPU device count before JAX starts)
import jax
import numpy as np
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
SPEED = HERE / "speed.yaml"
REPEATS = 3  # best of: the machine may be shared, the best run is the least disturbed
K, N_PER, L = 10, 50, 4


def step_flops(K, n, widths) -> float:
    """Forward + backward matmul FLOPs of one full-batch step: 3 x 2 x sum_l d_{l+1} d_l N."""
    N, dims = K * n, list(widths) + [K]
    return 6.0 * N * sum(dims[l + 1] * dims[l] for l in range(len(widths)))


def matmul_peak(sizes=(512, 1024, 2048, 3072), reps=5) -> tuple[float, int]:
    """Best GFLOP/s of a jitted, warm float32 matmul over `sizes` (best of `reps` each)."""
    import jax.numpy as jnp

    f = jax.jit(lambda a, b: a @ b)
    best = (0.0, 0)
    for size in sizes:
        a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
        b = jax.random.normal(jax.random.PRNGKey(1), (size, size), jnp.float32)
        jax.block_until_ready(f(a, b))
        for _ in range(reps):
            t = time.perf_counter()
            jax.block_until_ready(f(a, b))
            best = max(best, (2 * size**3 / (time.perf_counter() - t) / 1e9, size))
    return best


def engine_rate(width: int, seeds: int, steps: int, n: int = N_PER, one_group: bool = False) -> float:
    """Steady-state run-steps/s of one compiled chunk of `steps` steps (compiled and warmed first);
    one_group: every device's lanes in one vmapped group (a group budget larger than the program)."""
    from deepcollapse import engine
    from deepcollapse.config import DUFMConfig
    from deepcollapse.engine import Program

    if one_group:
        engine.GROUP_BYTES_CPU = 2**62
    cfg = DUFMConfig(K=K, n=n, L=L, width=width, seeds=seeds, steps=steps, log_every=steps,
                     lam_H=0.004, lam_W=0.004, lr=0.5 if width <= 64 else 0.05,
                     init_scale=0.3 if width <= 64 else 0.05)
    prog = Program([cfg])
    state = prog.init()
    prog.chunk(state, 0)  # compile + warm
    best = float("inf")
    for _ in range(REPEATS):
        t = time.perf_counter()
        prog.chunk(state, 0)
        best = min(best, time.perf_counter() - t)
    return seeds * steps / best


def matmuls_rate(width: int, seeds: int, steps: int, n: int = N_PER) -> float:
    """Run-steps/s of the step's matmuls alone, as the engine runs them (`engine.lane_groups` over the
    CPU devices, one vmapped `lax.scan` per group): the forward products Z_l = W_l H_l, then for every
    layer G_l H_l^T and W_l^T G_l, and the plain gradient-descent update of every factor; no
    activation, loss, regularisation or divergence check. The ceiling of the engine's step at this
    shape: what is left between the two is the step's elementwise work."""
    import jax.numpy as jnp

    from deepcollapse.config import DUFMConfig
    from deepcollapse.engine import group_size, lane_devices, lane_groups

    cfg = DUFMConfig(K=K, n=n, L=L, width=width, seeds=seeds)
    dims, N, c = [*cfg.widths, K], cfg.N, 1e-6

    def lane(H, Ws):
        def body(carry, _):
            H, Ws = carry
            feats = [H]
            for W in Ws:
                feats.append(W @ feats[-1])
            G, gWs = feats[-1], []
            for l in reversed(range(L)):
                gWs.insert(0, G @ feats[l].T)
                G = Ws[l].T @ G
            return (H - c * G, tuple(W - c * g for W, g in zip(Ws, gWs))), None

        return jax.lax.scan(body, (H, Ws), None, length=steps)[0]

    # one lane runs unbatched, as `engine.Program` runs it
    f = jax.jit(jax.vmap(lane)) if seeds > 1 else jax.jit(
        lambda H, Ws: jax.tree.map(lambda x: x[None], lane(H[0], tuple(W[0] for W in Ws))))
    key = jax.random.PRNGKey(0)
    H = jax.random.normal(key, (seeds, dims[0], N), jnp.float32)
    Ws = tuple(jax.random.normal(key, (seeds, dims[l + 1], dims[l]), jnp.float32) / dims[l] ** 0.5
               for l in range(L))
    devices = lane_devices()
    groups = [(sl, devices[d]) for sl, d in lane_groups(seeds, len(devices), group_size(cfg))] \
        if devices[0].platform == "cpu" and seeds > 1 else [(slice(0, seeds), devices[0])]
    args = [jax.device_put((H[sl], tuple(W[sl] for W in Ws)), dev) for sl, dev in groups]
    jax.block_until_ready([f(*a) for a in args])  # compile + warm
    best = float("inf")
    for _ in range(REPEATS):
        t = time.perf_counter()
        jax.block_until_ready([f(*a) for a in args])
        best = min(best, time.perf_counter() - t)
    return seeds * steps / best


def engine_rate_in_process(width: int, seeds: int, steps: int, devices: int | None, n: int = N_PER,
                           one_group: bool = False, matmuls: bool = False) -> float:
    """`engine_rate` (or, with matmuls, `matmuls_rate`) in a fresh process (the CPU device count is
    fixed when JAX starts)."""
    env = dict(os.environ)
    if devices is not None:
        env["DEEPCOLLAPSE_CPU_DEVICES"] = str(devices)
    call = f"t.matmuls_rate({width}, {seeds}, {steps}, {n})" if matmuls else \
        f"t.engine_rate({width}, {seeds}, {steps}, {n}, {one_group})"
    code = (f"import deepcollapse, sys; sys.path.insert(0, {str(HERE)!r}); import train_throughput as t; "
            f"print({call})")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def end_to_end(steps: int, cache: str, out: str, helper: bool = True) -> float:
    """Wall seconds of `deepcollapse train benchmarks/speed.yaml --set steps=...` in a fresh process
    (helper False: without the helper process, DEEPCOLLAPSE_HELPER_PROCESS=0)."""
    env = dict(os.environ, DEEPCOLLAPSE_JAX_CACHE=cache, DEEPCOLLAPSE_HELPER_PROCESS="1" if helper else "0")
    cmd = [sys.executable, "-m", "deepcollapse.cli", "train", str(SPEED), "--out", out, "--set", f"steps={steps}"]
    t = time.perf_counter()
    subprocess.run(cmd, env=env, capture_output=True, check=True)
    return time.perf_counter() - t


def eager_rate(width: int, steps: int) -> tuple[float, str]:
    """Steps/s of one run of the per-run eager loop (PyTorch autograd, else NumPy by hand)."""
    try:
        import torch
    except ImportError:
        return _numpy_rate(width, steps), "numpy"
    g = torch.Generator().manual_seed(0)
    N = K * N_PER
    dims = [width] * L + [K]
    H = (0.3 * torch.randn(width, N, generator=g)).requires_grad_()
    Ws = [(0.3 * torch.randn(dims[l + 1], dims[l], generator=g)).requires_grad_() for l in range(L)]
    Y = torch.eye(K).repeat_interleave(N_PER, dim=1)
    opt = torch.optim.SGD([H, *Ws], lr=0.5 if width <= 64 else 0.05)

    def step():
        opt.zero_grad()
        X = H
        for l, W in enumerate(Ws):
            X = W @ X
            if l < L - 1:
                X = torch.relu(X)
        loss = 0.5 * ((X - Y) ** 2).sum() / N + 0.002 * (H**2).sum() + sum(0.002 * (W**2).sum() for W in Ws)
        loss.backward()
        opt.step()

    for _ in range(10):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - t), "torch eager"


def _numpy_rate(width: int, steps: int) -> float:
    rng = np.random.default_rng(0)
    N = K * N_PER
    dims = [width] * L + [K]
    H = 0.3 * rng.standard_normal((width, N)).astype(np.float32)
    Ws = [0.3 * rng.standard_normal((dims[l + 1], dims[l])).astype(np.float32) for l in range(L)]
    Y = np.repeat(np.eye(K, dtype=np.float32), N_PER, axis=1)
    t = time.perf_counter()
    for _ in range(steps):
        acts, X = [H], H
        for l, W in enumerate(Ws):
            Z = W @ X
            X = np.maximum(Z, 0) if l < L - 1 else Z
            acts.append(X)
        G = (X - Y) / N
        gW = [None] * L
        for l in reversed(range(L)):
            gW[l] = G @ acts[l].T + 0.004 * Ws[l]
            G = Ws[l].T @ G
            if l > 0:
                G = G * (acts[l] > 0)
        H -= 0.5 * (G + 0.004 * H)
        for l in range(L):
            Ws[l] -= 0.5 * gW[l]
    return steps / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4000, help="steps of the timed chunk (steady state)")
    ap.add_argument("--eager-steps", type=int, default=2000, help="steps of the eager loop that are timed")
    ap.add_argument("--full-eager", action="store_true", help="run the eager loop for all 10 x 20,000 steps")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers to this JSON file")
    args = ap.parse_args()
    con = Console()
    peak, peak_size = matmul_peak()
    import yaml

    spec = yaml.safe_load(SPEED.read_text())
    seeds, total = spec["seeds"], spec["steps"]

    from deepcollapse.config import DUFMConfig
    from deepcollapse.engine import group_size, lane_groups

    steady = Table(title=f"Steady state: DUFM K={K}, L={L}, MSE ReLU (device: {jax.devices()[0].platform}, "
                         f"{len(jax.devices())} devices)")
    for c in ["width", "n", "seeds", "lanes batched as", "run-steps/s", "GFLOP/s", "% of matmul peak"]:
        steady.add_column(c, justify="right")
    numbers: dict = {"peak_gflops": peak, "peak_size": peak_size, "steady": [], "end_to_end": {}}
    ndev = len(jax.devices())

    def g(n, s, d=ndev):
        """The groups of one device's share (`engine.lane_groups`): 'groups of 2+3', '22 groups of 22-23'."""
        sizes = [sl.stop - sl.start for sl, dev in lane_groups(s, d, group_size(DUFMConfig(K=K, n=n, L=L, width=30)))
                 if dev == 0]
        return "groups of " + "+".join(map(str, sizes)) if len(sizes) <= 4 else \
            f"{len(sizes)} groups of {min(sizes)}-{max(sizes)}"

    census = 1000
    rows = [(30, N_PER, 1, None, False, False, "one lane"),
            (30, N_PER, seeds, 1, False, False, f"1 device, {g(N_PER, seeds, 1)}"),
            (30, N_PER, seeds, None, False, False, f"{ndev} devices, {g(N_PER, seeds)} each"),
            (30, N_PER, seeds, None, False, True, "the same, its matmuls and update alone (the ceiling)"),
            (256, N_PER, 1, None, False, False, "one lane"),
            (256, N_PER, 1, None, False, True, "the same, its matmuls and update alone (the ceiling)"),
            (30, 5, census, None, True, False, f"{ndev} devices, one group of {-(-census // ndev)} each (earlier layout)"),
            (30, 5, census, None, False, False, f"{ndev} devices, {g(5, census)} each")]
    for width, n, s, devices, one_group, matmuls, how in rows:
        steps = args.steps if width <= 64 else max(args.steps // 20, 50)
        steps = steps if s <= 100 else max(steps // 20, 100)
        rate = engine_rate_in_process(width, s, steps, devices, n, one_group, matmuls)
        gf = rate * step_flops(K, n, [width] * L) / 1e9
        steady.add_row(str(width), str(n), str(s), how, f"{rate:,.0f}", f"{gf:.1f}", f"{100 * gf / peak:.0f}%")
        numbers["steady"].append({"width": width, "n": n, "seeds": s, "batched": how, "matmuls_only": matmuls,
                                  "run_steps_per_s": rate, "gflops": gf, "fraction_of_peak": gf / peak})
    con.print(steady)
    con.print(f"matmul peak: {peak:.1f} GFLOP/s (jitted float32 {peak_size}^2, best of sizes 512-3072)")

    with tempfile.TemporaryDirectory() as tmp:
        cache = str(Path(tmp) / "jax-cache")
        cold = end_to_end(total, cache, str(Path(tmp) / "a"))
        warm = end_to_end(total, cache, str(Path(tmp) / "b"))
        fixed = end_to_end(500, cache, str(Path(tmp) / "c"))
        alone = end_to_end(500, cache, str(Path(tmp) / "e"), helper=False)
        fixed_again = end_to_end(500, cache, str(Path(tmp) / "d"))
        alone_again = end_to_end(500, cache, str(Path(tmp) / "f"), helper=False)
    fixed, alone = min(fixed, fixed_again), min(alone, alone_again)
    e_rate, e_kind = eager_rate(spec["width"], args.eager_steps)
    if args.full_eager:
        t = time.perf_counter()
        for _ in range(seeds):
            eager_rate(spec["width"], total)
        eager_total, how = time.perf_counter() - t, "measured"
    else:
        eager_total, how = seeds * total / e_rate, f"{e_rate:,.0f} steps/s x {seeds} x {total:,} steps"
    e2e = Table(title=f"End to end: deepcollapse train benchmarks/speed.yaml ({seeds} seeds x {total:,} steps, "
                      f"figure included), fresh process")
    for c in ["", "seconds", f"{e_kind} loop / this"]:
        e2e.add_column(c, justify="right")
    e2e.add_row("first time (empty compilation cache)", f"{cold:.1f}", f"{eager_total / cold:.1f}x")
    e2e.add_row("programs compiled before", f"{warm:.1f}", f"{eager_total / warm:.1f}x")
    e2e.add_row("fixed cost (the same at 500 steps, compiled before)", f"{fixed:.2f}", "")
    e2e.add_row("the same in one process (DEEPCOLLAPSE_HELPER_PROCESS=0)", f"{alone:.2f}", "")
    e2e.add_row(f"{e_kind} loop, 10 runs one after the other ({how})", f"{eager_total:.1f}", "1.0x")
    con.print(e2e)
    numbers["end_to_end"] = {"cold_s": cold, "warm_s": warm, "fixed_s": fixed, "fixed_one_process_s": alone,
                             "eager_s": eager_total,
                             "eager_kind": e_kind, "eager_how": how, "ratio_warm": eager_total / warm,
                             "ratio_cold": eager_total / cold}
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2))


if __name__ == "__main__":
    main()
