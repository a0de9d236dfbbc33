"""benchmarks/gpu_run.py's CPU path (--tiny): every step runs and writes its numbers and figures."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DEEPCOLLAPSE_TEST_DATA", ROOT.parent / "shared" / "datasets"))


@pytest.mark.slow
def test_tiny_gpu_run_on_the_cpu(tmp_path):
    if not (DATA / "mnist" / "t10k-images-idx3-ubyte.gz").exists() or not (DATA / "cifar10-jpeg").exists():
        pytest.skip(f"shared datasets not found under {DATA}")
    env = dict(os.environ, DEEPCOLLAPSE_DATA=str(DATA))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_run.py"), "--out", str(tmp_path),
                           "--tiny", "--budget", "600"], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert [r["lanes"] for r in res["engine"]] == [2, 4] and all(r["run_steps_per_s"] > 0 for r in res["engine"])
    assert res["resnet"][0]["jax_img_per_s"] > 0
    for name in ("garrod-fig7", "garrod-fig3-cifar10-relu"):
        run = res[name]
        assert "error" not in run, run.get("traceback")
        assert run["summary"][0]["epochs"] >= 1 and len(run["summary"][0]["logit_singular_values"]) == 10
        assert (tmp_path / f"{name}.png").stat().st_size > 0
    assert len([f for f in tmp_path.iterdir()]) <= 8  # what a device call brings back
