"""`deepcollapse measure`: a model file and a data set in, the metrics by depth out (table, tidy
parquet, figure); the numbers equal the metrics of the same features computed by hand; bad input is
one line and exit code 2."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

from deepcollapse import metrics
from deepcollapse.cli import app

runner = CliRunner()
DATA = Path(os.environ.get("DEEPCOLLAPSE_TEST_DATA", "../shared/datasets"))
needs_mnist = pytest.mark.skipif(not (DATA / "mnist" / "t10k-images-idx3-ubyte.gz").is_file(),
                                 reason="MNIST test files not in DEEPCOLLAPSE_TEST_DATA")


def _scripted(path: Path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    torch.jit.save(torch.jit.script(model), str(path))
    return model


def _run(args, tmp_path):
    return runner.invoke(app, ["measure", *args, "--no-progress"], env={"DEEPCOLLAPSE_DATA": str(DATA)})


@needs_mnist
def test_torchscript_output_metrics_equal_the_hand_computed_ones(tmp_path):
    model = _scripted(tmp_path / "m.pt")
    out = tmp_path / "out"
    r = _run(["--model", str(tmp_path / "m.pt"), "--data", "mnist", "--split", "test", "--n-per-class", "12",
              "--layers", "output", "--batch-size", "50", "--out", str(out), "--json"], tmp_path)
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["info"]["N"] == 120
    table = pd.read_parquet(out / "metrics.parquet")
    assert set(table.columns) >= {"layer", "depth", "dim", "metric", "value"}
    assert (out / "metrics_vs_depth.png").is_file() and (out / "metrics.csv").is_file()
    # the same data and logits by hand
    from deepcollapse.data import load, standardize

    ds = load("mnist", "test", DATA, 12)
    x = torch.from_numpy(standardize(ds.x)[0].transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        Z = model(x).double().numpy().T
    got = table.set_index("metric")["value"]
    np.testing.assert_allclose(got["nc1"], metrics.nc1(Z, ds.y, 10), rtol=1e-5)
    np.testing.assert_allclose(got["dnc1"], metrics.nc1_trace_ratio(Z, ds.y, 10), rtol=1e-5)
    np.testing.assert_allclose(got["nc2_etf"], metrics.nc2_etf_distance(metrics.class_means(Z, ds.y, 10)), rtol=1e-5)
    assert got["rank_means"] == float(metrics.numerical_rank(metrics.class_means(Z, ds.y, 10)))


@needs_mnist
@pytest.mark.parametrize(("args", "message"), [
    (["--layers", "1"], "TorchScript"),
    ([], "--layers"),
    (["--layers", "output", "--covariance", "maybe"], "--covariance"),
    (["--layers", "output", "--split", "val"], "split"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    _scripted(tmp_path / "m.pt")
    r = _run(["--model", str(tmp_path / "m.pt"), "--data", "mnist", "--n-per-class", "2", "--out",
              str(tmp_path / "o"), *args], tmp_path)
    assert r.exit_code == 2, r.output
    assert "error:" in r.output and message in r.output and "Traceback" not in r.output


def test_model_choice_is_checked(tmp_path):
    r = _run(["--layers", "x", "--data", "mnist"], tmp_path)
    assert r.exit_code == 2 and "--arch" in r.output


@pytest.mark.skipif(not (DATA / "cifar10-jpeg" / "test").is_dir(), reason="CIFAR-10 not in DEEPCOLLAPSE_TEST_DATA")
def test_torchvision_resnet_layers(tmp_path):
    pytest.importorskip("torchvision")
    out = tmp_path / "out"
    r = _run(["--arch", "resnet18", "--data", "cifar10", "--n-per-class", "3", "--layers", "layer3,layer4",
              "--classifier", "fc", "--out", str(out), "--json"], tmp_path)
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert list(rec["metrics"]) == ["layer3", "layer4", "fc:input"]
    assert rec["metrics"]["fc:input"]["nc3"] is not None and rec["metrics"]["layer4"]["nc3"] is None
