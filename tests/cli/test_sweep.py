"""`deepcollapse sweep`: runs, records failures, resumes; bad options and files exit 2 in one line."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from deepcollapse import sweep
from deepcollapse.cli import app

BASE = dict(K=3, n=2, L=2, width=3, steps=40, log_every=20, dtype="float64", seeds=1, lr=0.1)
NET = dict(kind="net", dataset="synthetic", synthetic_K=3, n_per_class=3, synthetic_shape=(8, 8, 1),
           channels=(2, 2, 4), L=2, width=4, batch_size=None, epochs=1, eval_every=1)
runner = CliRunner()


def test_sweep_command_runs_records_failures_and_resumes(tmp_path):
    """Two network points; the second reads a data set that is not on disk: it fails on its own."""
    spec = tmp_path / "sweep.yaml"
    grid = {"dataset": ["synthetic", "mnist"]}
    spec.write_text(yaml.safe_dump({"base": {**NET, "data_root": str(tmp_path / "empty")}, "grid": grid}))
    good, bad = sweep.read_sweep_file(spec)
    out = tmp_path / "out"
    res = runner.invoke(app, ["sweep", str(spec), "--out", str(out), "--json"])
    assert res.exit_code == 1, res.output  # a failed point makes the command fail
    rep = json.loads(res.stdout)
    assert (rep["ran"], rep["skipped"], rep["failed"], rep["retried"]) == (1, 0, 1, 0)
    assert list(rep["errors"]) == [bad.run_id()]
    assert list(sweep.load_points(out)["run_id"]) == [good.run_id()]
    res = runner.invoke(app, ["sweep", str(spec), "--out", str(out)])
    assert res.exit_code == 1, res.output
    assert "0 ran, 1 skipped, 0 busy, 1 failed" in res.stdout and bad.run_id() in res.stdout


@pytest.mark.parametrize("args, text", [
    (["--backend", "slurm"], "local, ray"),
    (["--ray-address", "auto"], "--backend ray"),
])
def test_sweep_command_rejects_bad_options(tmp_path, args, text):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({"base": BASE, "grid": {}}))
    res = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "o"), *args])
    assert res.exit_code == 2 and text in res.output


@pytest.mark.parametrize("content, text", [
    ({"base": BASE, "grids": {"lam_H": [0.1]}}, "unknown keys"),
    ("base: {K: 3\n", "not valid YAML"),
    ({"base": BASE, "grid": {"optimizer.kwargs": [{}, {"no_such_option": 1.0}]}}, "takes no keyword"),
    ({"base": BASE, "grid": {"n": [2, True]}}, "n: Input should be a valid integer"),
])
def test_sweep_command_rejects_bad_files_in_one_line(tmp_path, content, text):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    res = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and text in res.output, res.output
    assert "Traceback" not in res.output and "errors.pydantic.dev" not in res.output
    assert not (tmp_path / "o").exists()  # nothing written


def test_sweep_command_out_is_a_file(tmp_path):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({"base": BASE, "grid": {}}))
    (tmp_path / "o").write_text("x")
    res = runner.invoke(app, ["sweep", str(spec), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "not a folder" in res.output and "Traceback" not in res.output
