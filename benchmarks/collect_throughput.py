"""Cost of `deepcollapse.torch.collect` against the model's forward pass alone, and its memory.

ResNet-18 (torchvision, 10 classes) in eval mode over CIFAR-10 test images (`deepcollapse.data`,
standardised), batch 250: (a) the forward pass alone over the loader under no_grad, (b) `collect`
of layer1..layer4 (average-pooled, second moments kept: d = 64..512) over the same loader, measured
in the same run, best of --repeats after one warm-up pass each (which also compiles the jitted
accumulation). The ratio is (b) / (a); the goal is <= 1.20. Peak resident memory is the process's
maximum RSS (getrusage) after everything: an upper bound for collect's, data and libraries included;
the goal is < 2 GB at 10,000 images.

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
    p.add_argument("--repeats", type=int, default=2)
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

    def best(fn):
        fn()  # warm-up
        times = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    t_fwd = best(forward_only)
    t_col = best(collected)
    N = len(loader.dataset)
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(f"ResNet-18, CIFAR-10 test, N = {N}, batch {a.batch}, torch threads {torch.get_num_threads()}, "
          f"best of {a.repeats}")
    print(f"{'run':<32} {'seconds':>8} {'images/s':>9} {'ratio':>6}")
    print(f"{'forward pass alone':<32} {t_fwd:8.2f} {N / t_fwd:9.0f} {1.0:6.2f}")
    print(f"{'collect layer1..layer4':<32} {t_col:8.2f} {N / t_col:9.0f} {t_col / t_fwd:6.2f}   (goal <= 1.20)")
    print(f"peak resident memory of the process: {rss_gb:.2f} GiB (goal < 2 GB)")


if __name__ == "__main__":
    main()
