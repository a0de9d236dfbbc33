"""Cost of `deepcollapse.torch.collect` against the model's forward pass alone, and its memory.

ResNet-18 (torchvision, 10 classes) in eval mode over CIFAR-10 test images (`deepcollapse.data`,
standardised), batch 250: (a) the forward pass alone over the loader under no_grad, (b) `collect`
of layer1..layer4 (average-pooled, second moments kept: d = 64..512) over the same loader, measured
in the same run, best of --repeats interleaved runs after one warm-up pass each (which also compiles
the jitted accumulation); (c) the accumulation alone (`stats.stream_batches`) over feature batches
of the same shapes, the part of (b) that is not the forward pass, which a loaded machine cannot
hide in its noise. Ratios: (b) / (a) of wall-clock time and of the CPU time of all the process's
threads (torch's and XLA's), and ((a) + (c)) / (a); the goal is <= 1.20. Peak resident memory is
the process's maximum RSS (getrusage) at the end: an upper bound for collect's, data and libraries
included; the goal is < 2 GB at 10,000 images.

    python benchmarks/collect_throughput.py                  # 2,000 images
    python benchmarks/collect_throughput.py --images 10000
"""

from __future__ import annotations

import argparse
import resource
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=2000, help="test images (a multiple of 10)")
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--data-root", default=None)
    a = p.parse_args()

    import torch
    import torchvision

    from deepcollapse.torch import collect
    from deepcollapse.torch.measure import dataset_loader

    if a.threads:
        torch.set_num_threads(a.threads)
    loader, _ = dataset_loader("cifar10", "test", a.data_root, a.images // 10, a.batch, "dataset")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    layers = ["layer1", "layer2", "layer3", "layer4"]

    def forward_only():
        with torch.no_grad():
            for x, _ in loader:
                model(x)

    def collected():
        st = collect(model, loader, layers, 10, progress=False)
        st.layers["layer4"].counts.block_until_ready()
        return st

    forward_only()  # warm-up
    collected()  # warm-up, compiles the accumulation
    wall = {forward_only: [], collected: []}
    cpu = {forward_only: [], collected: []}
    for _ in range(a.repeats):  # interleaved, so that a change in the machine's load hits both
        for fn, runs in wall.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            runs.append(time.perf_counter() - t)
            cpu[fn].append(time.process_time() - c)
    t_fwd, t_col = min(wall[forward_only]), min(wall[collected])
    import numpy as np

    from deepcollapse.stats import stream_batches

    rng = np.random.default_rng(0)
    fake = [({n: rng.standard_normal((len(y), d)).astype(np.float32) for n, d in zip(layers, (64, 128, 256, 512))},
             y.numpy()) for _, y in loader]
    stream_batches(fake, 10)  # warm-up
    t = time.perf_counter()
    for _ in range(a.repeats):
        st = stream_batches(fake, 10)
        st.layers["layer4"].counts.block_until_ready()
    t_acc = (time.perf_counter() - t) / a.repeats
    c_fwd, c_col = min(cpu[forward_only]), min(cpu[collected])
    N = len(loader.dataset)
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(f"ResNet-18, CIFAR-10 test, N = {N}, batch {a.batch}, torch threads {torch.get_num_threads()}, "
          f"best of {a.repeats}")
    print(f"{'run':<32} {'wall s':>7} {'images/s':>9} {'ratio':>6} {'CPU s':>7} {'CPU ratio':>9}")
    print(f"{'forward pass alone':<32} {t_fwd:7.2f} {N / t_fwd:9.0f} {1.0:6.2f} {c_fwd:7.2f} {1.0:9.2f}")
    print(f"{'collect layer1..layer4':<32} {t_col:7.2f} {N / t_col:9.0f} {t_col / t_fwd:6.2f} {c_col:7.2f} "
          f"{c_col / c_fwd:9.2f}   (goal <= 1.20)")
    print(f"{'accumulation alone':<32} {t_acc:7.2f} {N / t_acc:9.0f} {(t_fwd + t_acc) / t_fwd:6.2f}"
          f"{'':>18}   ((a) + (c)) / (a)")
    print(f"peak resident memory of the process: {rss_gb:.2f} GiB (goal < 2 GB)")


if __name__ == "__main__":
    main()
