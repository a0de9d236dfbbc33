"""Training throughput (images/second) of ResNet-20 + MLP head: JAX/Flax NNX vs a PyTorch eager reference.

One SGD step = forward in train mode (batch-statistics BatchNorm), MSE loss with the DUFM-like
regulariser, backward, update. JAX: `deepcollapse.nets.train.make_epoch`, the code a network run
executes (one jitted program per step); PyTorch: the same architecture (option-A shortcuts, bias-free head) in eager mode, if torch
is importable. Timing starts after `--warmup` steps (compilation included there) and stops after
`--iters` steps with `block_until_ready` (JAX) / a synchronising `.item()` (torch).

    python benchmarks/resnet_throughput.py                       # batch 128 and 512, 3 steps each
    python benchmarks/resnet_throughput.py --iters 20 --batch 128 256 512 1024 --image 28 28 1
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from deepcollapse.nets import NetConfig, build_net
from deepcollapse.nets.train import make_epoch


def jax_throughput(B: int, image, K: int, L: int, width: int, warmup: int, iters: int) -> float:
    """Images/s of `deepcollapse.nets.train.make_epoch`, the function a network run executes (batch
    gathered by a permutation, loss, gradient, optax update), with N = B: one step per epoch."""
    cfg = NetConfig(L=L, width=width, lr=0.01, momentum=0.9, lam_H=1e-4, lam_W=1e-4, batch_size=None)
    model = build_net(cfg, image[-1], K, seed=0)
    graphdef, params, bstats = nnx.split(model, nnx.Param, nnx.BatchStat)
    tx = optax.sgd(cfg.lr, momentum=cfg.momentum)
    epoch = make_epoch(graphdef, cfg, tx, N=B, B=B)

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((B, *image)), jnp.float32)
    y = jnp.asarray(rng.integers(0, K, B), jnp.int32)
    state = (params, bstats, tx.init(params))
    key = jax.random.PRNGKey(0)
    for i in range(warmup):
        *state, losses, _ = epoch(*state, jax.random.fold_in(key, i), x, y)
    jax.block_until_ready(losses)
    t = time.perf_counter()
    for i in range(iters):
        *state, losses, _ = epoch(*state, jax.random.fold_in(key, warmup + i), x, y)
    jax.block_until_ready(losses)
    return B * iters / (time.perf_counter() - t)


def torch_throughput(B: int, image, K: int, L: int, width: int, warmup: int, iters: int,
                     device: str = "cpu") -> float | None:
    """Images/s of the same network and step in PyTorch eager on `device` (None without torch)."""
    try:
        import torch
        import torch.nn as tnn
        import torch.nn.functional as TF
    except ImportError:
        return None

    class Block(tnn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.c1 = tnn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.b1 = tnn.BatchNorm2d(c_out)
            self.c2 = tnn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.b2 = tnn.BatchNorm2d(c_out)
            self.stride, self.extra = stride, c_out - c_in

        def forward(self, x):
            out = self.b2(self.c2(TF.relu(self.b1(self.c1(x)))))
            sc = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
            if self.extra:
                lo = self.extra // 2
                sc = TF.pad(sc, (0, 0, 0, 0, lo, self.extra - lo))
            return TF.relu(out + sc)

    class Net(tnn.Module):
        def __init__(self, c_in):
            super().__init__()
            self.stem = tnn.Conv2d(c_in, 16, 3, 1, 1, bias=False)
            self.bn = tnn.BatchNorm2d(16)
            blocks, prev = [], 16
            for s, c in enumerate((16, 32, 64)):
                for b in range(3):
                    blocks.append(Block(prev, c, 2 if (s > 0 and b == 0) else 1))
                    prev = c
            self.blocks = tnn.Sequential(*blocks)
            dims = [64] + [width] * (L - 1) + [K]
            self.head = tnn.ModuleList(tnn.Linear(dims[l], dims[l + 1], bias=False) for l in range(L))

        def forward(self, x):
            h = self.blocks(TF.relu(self.bn(self.stem(x)))).mean(dim=(2, 3))
            h1 = h
            for l, W in enumerate(self.head):
                h = W(h)
                if l < L - 1:
                    h = TF.relu(h)
            return h, h1

    torch.manual_seed(0)
    net = Net(image[-1]).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(B, image[-1], image[0], image[1], device=device)
    y = torch.randint(0, K, (B,), device=device)
    Y = TF.one_hot(y, K).float()
    lam = 1e-4

    def step():
        opt.zero_grad(set_to_none=True)
        z, h1 = net(x)
        loss = 0.5 * ((z - Y) ** 2).sum() / B + 0.5 * lam * (h1**2).sum()
        loss = loss + sum(0.5 * lam * (W.weight**2).sum() for W in net.head)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    t = time.perf_counter()
    for _ in range(iters):
        step()
    return B * iters / (time.perf_counter() - t)


def print_memory(a) -> None:
    """The `--memory` table: `nets.train.planned_memory` for every batch, in GiB."""
    from deepcollapse.nets.train import planned_memory

    dev = jax.devices()[0]
    print(f"JAX {jax.__version__} on {dev.platform} ({dev.device_kind}); image {tuple(a.image)}, head L={a.L} "
          f"width={a.width}, N = {a.memory} training images (compiled, not run)")
    print(f"{'batch':>6} | {'arguments GiB':>13} | {'temporaries GiB':>15} | {'total GiB':>9}")
    print("-" * 54)
    for B in a.batch:
        cfg = NetConfig(dataset="synthetic", synthetic_K=a.K, n_per_class=-(-a.memory // a.K), L=a.L, width=a.width, lr=0.05, lam_H=5e-6,
                        lam_W=5e-3, batch_size=B)
        m = planned_memory(cfg, tuple(a.image), a.memory, B)
        g = {k: v / 2**30 for k, v in m.items()}
        print(f"{B:>6} | {g['arguments']:13.2f} | {g['temporaries']:15.2f} | {g['total']:9.2f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, nargs="+", default=[128, 512])
    p.add_argument("--iters", type=int, default=3, help="timed steps per batch size")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (JAX compiles here)")
    p.add_argument("--image", type=int, nargs=3, default=[32, 32, 3], metavar=("H", "W", "C"))
    p.add_argument("--K", type=int, default=10)
    p.add_argument("--L", type=int, default=2, help="head layers")
    p.add_argument("--width", type=int, default=64, help="head width")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--memory", type=int, metavar="N", default=None,
                   help="print the memory XLA plans for one step per --batch on a training set of N images "
                        "(compiled, not run; e.g. --memory 50000 --batch 10000 for the papers' full size)")
    a = p.parse_args(argv)
    if a.iters < 1 or a.warmup < 1:
        p.error("--iters and --warmup must be >= 1")
    if a.memory is not None:
        return print_memory(a)

    dev = jax.devices()[0]
    print(f"JAX {jax.__version__} on {dev.platform} ({dev.device_kind}); image {tuple(a.image)}, "
          f"head L={a.L} width={a.width}, {a.iters} timed steps after {a.warmup} warm-up")
    rows = []
    for B in a.batch:
        j = jax_throughput(B, tuple(a.image), a.K, a.L, a.width, a.warmup, a.iters)
        t = None if a.no_torch else torch_throughput(B, tuple(a.image), a.K, a.L, a.width, a.warmup, a.iters)
        rows.append((B, j, t))
    try:
        import torch

        tinfo = f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU eager"
    except ImportError:
        tinfo = "torch not importable"
    print(f"PyTorch reference: {tinfo if not a.no_torch else 'skipped'}")
    print(f"{'batch':>6} | {'JAX img/s':>10} | {'torch img/s':>11} | {'JAX/torch':>9}")
    print("-" * 46)
    for B, j, t in rows:
        ts = f"{t:11.1f}" if t else f"{'-':>11}"
        rs = f"{j / t:9.2f}" if t else f"{'-':>9}"
        print(f"{B:>6} | {j:10.1f} | {ts} | {rs}")


if __name__ == "__main__":
    main()
