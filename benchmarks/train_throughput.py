"""DUFM training throughput: run-steps per second of the compiled engine vs an eager loop, and the
fraction of this machine's matmul FLOP rate reached at width 256.

    python benchmarks/train_throughput.py [--steps 2000] [--eager-steps 300]

Rows: the quickstart shape of DEVELOPERS.md (K=10, n=50 per class, width 30, L=4, MSE, ReLU) with
1 and 10 seeds, and width 256 with 1 seed. Baseline measured in the same run: a per-run eager loop
written the way the field's scripts are (PyTorch autograd if torch is installed, else NumPy with
hand-written backward), and a large float32 matmul (GFLOP/s). Times are taken after a warm-up
(compilation excluded), with block_until_ready.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
from rich.console import Console
from rich.table import Table

from deepcollapse.config import DUFMConfig
from deepcollapse.engine import Program

REPEATS = 3  # best of: the machine may be shared, the best run is the least disturbed


def step_flops(K, n, widths) -> float:
    """Forward + backward matmul FLOPs of one full-batch step: 3 x 2 x sum_l d_{l+1} d_l N."""
    N, dims = K * n, list(widths) + [K]
    return 6.0 * N * sum(dims[l + 1] * dims[l] for l in range(len(widths)))


def engine_rate(K, n, L, width, seeds, steps) -> float:
    cfg = DUFMConfig(K=K, n=n, L=L, width=width, seeds=seeds, steps=steps, log_every=steps,
                     lam_H=0.004, lam_W=0.004, lr=0.5 if width <= 64 else 0.05, init_scale=0.3 if width <= 64 else 0.05)
    prog = Program([cfg])
    state = prog.init()
    jax.block_until_ready(prog._chunk(state, prog.lam_H, prog.lam_W, prog.lr))  # compile + warm
    best = float("inf")
    for _ in range(REPEATS):
        t = time.perf_counter()
        jax.block_until_ready(prog._chunk(state, prog.lam_H, prog.lam_W, prog.lr))
        best = min(best, time.perf_counter() - t)
    return seeds * steps / best


def eager_rate(K, n, L, width, steps) -> tuple[float, str]:
    try:
        import torch
    except ImportError:
        return _numpy_rate(K, n, L, width, steps), "numpy"
    torch.set_num_threads(max(1, torch.get_num_threads()))
    g = torch.Generator().manual_seed(0)
    N = K * n
    dims = [width] * L + [K]
    H = (0.3 * torch.randn(width, N, generator=g)).requires_grad_()
    Ws = [(0.3 * torch.randn(dims[l + 1], dims[l], generator=g)).requires_grad_() for l in range(L)]
    Y = torch.eye(K).repeat_interleave(n, dim=1)
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
    best = float("inf")
    for _ in range(REPEATS):
        t = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, time.perf_counter() - t)
    return steps / best, "torch eager"


def _numpy_rate(K, n, L, width, steps) -> float:
    rng = np.random.default_rng(0)
    N = K * n
    dims = [width] * L + [K]
    H = 0.3 * rng.standard_normal((width, N)).astype(np.float32)
    Ws = [0.3 * rng.standard_normal((dims[l + 1], dims[l])).astype(np.float32) for l in range(L)]
    Y = np.repeat(np.eye(K, dtype=np.float32), n, axis=1)
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


def matmul_gflops(size=2048, reps=5) -> float:
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    jax.block_until_ready(f(a))
    t = time.perf_counter()
    for _ in range(reps):
        jax.block_until_ready(f(a))
    return 2 * size**3 * reps / (time.perf_counter() - t) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--eager-steps", type=int, default=300)
    args = ap.parse_args()
    K, n, L = 10, 50, 4
    peak = matmul_gflops()
    t = Table(title=f"DUFM run-steps/s, K={K}, n={n}, L={L} (device: {jax.devices()[0].platform})")
    for c in ["width", "seeds", "engine run-steps/s", "eager steps/s", "eager", "ratio", "GFLOP/s", "% matmul"]:
        t.add_column(c, justify="right")
    eager_cache: dict = {}
    for width, seeds in [(30, 1), (30, 10), (256, 1)]:
        rate = engine_rate(K, n, L, width, seeds, args.steps if width <= 64 else args.steps // 10)
        if width not in eager_cache:
            eager_cache[width] = eager_rate(K, n, L, width, args.eager_steps if width <= 64 else args.eager_steps // 3)
        e_rate, e_kind = eager_cache[width]
        gf = rate * step_flops(K, n, [width] * L) / 1e9
        t.add_row(str(width), str(seeds), f"{rate:,.0f}", f"{e_rate:,.0f}", e_kind, f"{rate / e_rate:.1f}x",
                  f"{gf:.1f}", f"{100 * gf / peak:.0f}%")
    Console().print(t)
    Console().print(f"large matmul (2048^2, float32): {peak:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
