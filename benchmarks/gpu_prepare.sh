#!/usr/bin/env bash
# Run HERE (the CPU machine) once before benchmarks/gpu_run.sh goes to a GPU machine: it puts what a
# bare GPU image lacks into folders of the checkout that git ignores, so that `carry` takes them along
# (64 MiB in all):
#   .whl/       wheels of the Python packages the GPU image lacks (pydantic and its needs, pooch), for
#               the GPU image's Python 3.12
#   .gpu-data/  the MNIST train IDX files (9.5 MB) and a tar of the CIFAR-10 JPEG train folder, the
#               first PER_CLASS images of every class (default all 5,000: 13 MB compressed)
# Usage: bash benchmarks/gpu_prepare.sh [DATA_ROOT] [PER_CLASS]   (default ../shared/datasets 5000)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-../shared/datasets}"
PER_CLASS="${2:-5000}"
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
grep -qx '/.gpu-data/' .git/info/exclude 2>/dev/null || echo '/.gpu-data/' >> .git/info/exclude
rm -rf .whl && mkdir -p .whl
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
for pkg in pydantic pydantic-core annotated-types typing-inspection pooch platformdirs; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${plat[@]}" -d .whl "$pkg"
done
rm -rf .gpu-data && mkdir -p .gpu-data/mnist
cp "$DATA"/mnist/train-*-ubyte.gz .gpu-data/mnist/
list=$(mktemp)
(cd "$DATA/cifar10-jpeg" && for d in train/*/; do ls "$d" | sort | sed -n "1,${PER_CLASS}p" | sed "s|^|$d|"; done) > "$list"
tar -C "$DATA/cifar10-jpeg" -czf .gpu-data/cifar10-train.tgz -T "$list"
rm -f "$list"
du -sh --apparent-size .whl .gpu-data
