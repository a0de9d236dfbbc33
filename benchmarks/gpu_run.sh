#!/usr/bin/env bash
# On a GPU machine (the device tool: carry .whl and .gpu-data, prepared by benchmarks/gpu_prepare.sh):
#   bash benchmarks/gpu_run.sh            # writes into $OUT (or ./gpu-out), at most ~8 minutes
# Installs the carried wheels into /tmp/site (no network), puts the checkout's src on the path, points
# the data root at the carried data, and runs benchmarks/gpu_run.py within the time budget.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-out}"
mkdir -p "$OUT"
if ! python3 -c "import pydantic, pooch" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ -z "${DEEPCOLLAPSE_DATA:-}" ]; then  # the carried data: MNIST as is, CIFAR-10 unpacked from its tar
  export DEEPCOLLAPSE_DATA=/tmp/gpu-data
  mkdir -p /tmp/gpu-data/cifar10-jpeg && cp -r .gpu-data/mnist /tmp/gpu-data/
  tar -C /tmp/gpu-data/cifar10-jpeg -xzf .gpu-data/cifar10-train.tgz
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1 || true
python3 benchmarks/gpu_run.py --out "$OUT" --budget "${BUDGET:-480}" "$@"
