"""Train a torchvision ResNet-18 briefly on a CIFAR-10 subset (CPU), for the gallery's measure example.

    python examples/train_resnet18_cifar10.py --n-per-class 100 --epochs 12 --out runs/resnet18-cifar10.pt
    deepcollapse measure --arch resnet18 --weights runs/resnet18-cifar10.pt --data cifar10 --split train \
        --n-per-class 100 --layers layer1,layer2,layer3,layer4 --classifier fc \
        --out docs/gallery/measure-resnet18-cifar10

The same subset (deepcollapse.data.load, seed 0), standardised with its own per-channel mean and std
as `deepcollapse measure --normalize dataset` does, random crops (pad 4) and flips, SGD with momentum
0.9, weight decay 5e-4, cosine learning rate from 0.05, batch 128, cross-entropy. Prints the epoch
losses and the final train and test accuracy; saves the state dict.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

from deepcollapse.data import load, standardize


def tensors(split, n_per_class, root):
    ds = load("cifar10", split, root, n_per_class, seed=0)
    x = standardize(ds.x)[0].transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(ds.y)


def augment(x, gen):
    """Random crop with 4-pixel zero padding and horizontal flip, per image."""
    B = x.shape[0]
    pad = torch.nn.functional.pad(x, (4, 4, 4, 4))
    i = torch.randint(0, 9, (B,), generator=gen)
    j = torch.randint(0, 9, (B,), generator=gen)
    out = torch.stack([pad[b, :, i[b]:i[b] + 32, j[b]:j[b] + 32] for b in range(B)])
    flip = torch.rand(B, generator=gen) < 0.5
    out[flip] = out[flip].flip(3)
    return out


def accuracy(model, x, y, batch=500):
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[s:s + batch]).argmax(1) for s in range(0, len(x), batch)])
    return float((pred == y).float().mean())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-per-class", type=int, default=100)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--data-root", default=None)
    p.add_argument("--out", default="runs/resnet18-cifar10.pt")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    x, y = tensors("train", a.n_per_class, a.data_root)
    model = torchvision.models.resnet18(num_classes=10)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=5e-4)
    steps = a.epochs * ((len(x) + a.batch_size - 1) // a.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    t0 = time.time()
    for epoch in range(a.epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for s in range(0, len(x), a.batch_size):
            idx = perm[s:s + a.batch_size]
            loss = torch.nn.functional.cross_entropy(model(augment(x[idx], gen)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{a.epochs}: loss {total / len(x):.4f} ({time.time() - t0:.0f} s)", flush=True)
    xt, yt = tensors("test", 100, a.data_root)
    print(f"train accuracy {accuracy(model, x, y):.4f}, test accuracy (100 per class) {accuracy(model, xt, yt):.4f}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), a.out)
    print(f"saved {a.out}")


if __name__ == "__main__":
    main()
