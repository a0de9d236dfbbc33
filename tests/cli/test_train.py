"""`deepcollapse train` and `quickstart` end to end on tiny configs, and bad input: one message, exit
code 2, no traceback."""

import json
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from deepcollapse.cli import app, expand_multi_values

runner = CliRunner()
TINY = dict(K=3, n=2, L=2, width=4, lam_H=0.01, lam_W=0.01, lr=0.3, init_scale=0.5, steps=40, log_every=20,
            seeds=2)


def _write(tmp_path, d):
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def test_train_json_end_to_end(tmp_path):
    cfg = _write(tmp_path, TINY)
    r = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "runs"), "--json", "--set", "lr=0.2", "--pdf"])
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(obj["seeds"]) == 2
    s0 = obj["seeds"][0]
    assert set(s0) >= {"loss", "fit", "reg", "ranks", "found_dnc"}
    assert s0["loss"] == pytest.approx(s0["fit"] + s0["reg"], rel=1e-6)
    assert set(s0["ranks"]) == {"H1", "H2", "Z"}
    run = tmp_path / "runs" / obj["run_id"]
    assert obj["results"] == str(run)
    for name in ["config.yaml", "history.parquet", "params.npz", "summary.json", "training.png", "training.pdf"]:
        assert (run / name).exists(), name
    assert yaml.safe_load((run / "config.yaml").read_text())["lr"] == 0.2


@pytest.mark.parametrize("override, field", [
    ("width=2", "width"), ("lam_H=-1", "lam_H"), ("activation=tanh", "activation"),
    ("class_sizes=[2,0,2]", "class_sizes"), ("L=0", "L"),
])
def test_bad_config_exit_2_names_field(tmp_path, override, field):
    cfg = _write(tmp_path, TINY)
    proc = subprocess.run([sys.executable, "-m", "deepcollapse.cli", "train", str(cfg), "--out", str(tmp_path),
                           "--set", override] + (["--set", "n=null"] if field == "class_sizes" else []),
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert field in proc.stderr and "Traceback" not in proc.stderr + proc.stdout


def test_missing_config_file(tmp_path):
    r = runner.invoke(app, ["train", str(tmp_path / "nope.yaml")])
    assert r.exit_code == 2 and "not found" in r.output


def test_quickstart_small_json(tmp_path):
    r = runner.invoke(app, ["quickstart", "--out", str(tmp_path), "--steps", "200", "--seeds", "2", "--json"])
    assert r.exit_code == 0, r.output
    obj = json.loads(r.stdout.strip().splitlines()[-1])
    assert obj["reference"]["L_SRG"] < obj["reference"]["L_DNC"]  # K=10=C(5,2), L=4, lam=0.004 (Súkeník Fig. 2)
    assert len(obj["seeds"]) == 2


def test_multi_value_options_expand():
    assert expand_multi_values(["theory", "srg-ratio", "--r", "4", "5", "--lam", "0.1", "--json"]) == \
        ["theory", "srg-ratio", "--r", "4", "--r", "5", "--lam", "0.1", "--json"]
    assert expand_multi_values(["train", "c.yaml", "--set", "a=1"]) == ["train", "c.yaml", "--set", "a=1"]


def _cli(args, timeout=240):
    return subprocess.run([sys.executable, "-m", "deepcollapse.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("width", [100_000, 10_000_000])
def test_a_run_that_cannot_fit_is_refused_at_once(tmp_path, width):
    """A huge width used to hang forever in XLA; now the memory estimate refuses it before anything is
    allocated (the subprocess timeout makes a hang fail the test)."""
    cfg = _write(tmp_path, TINY)
    proc = _cli(["train", str(cfg), "--out", str(tmp_path / "runs"), "--set", f"width={width}", "--no-plot"], 120)
    assert proc.returncode == 2, proc.stderr
    assert "GiB" in proc.stderr and "available" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("override, field", [
    ("lam_H=.inf", "lam_H"), ("lam_W=.inf", "lam_W"), ("lr=.inf", "lr"), ("init_scale=.inf", "init_scale"),
    ("lr=.nan", "lr"), ("n=true", "n"), ("optimizer.name=apply_updates", "optimizer.name"),
    ("optimizer.kwargs={foo: 1}", "optimizer"),
])
def test_non_finite_and_wrong_types_are_refused_before_anything_is_written(tmp_path, override, field):
    cfg = _write(tmp_path, TINY)
    proc = _cli(["train", str(cfg), "--out", str(tmp_path / "runs"), "--set", override])
    assert proc.returncode == 2 and field in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_damaged_run_folder_is_recomputed_with_one_warning_line(tmp_path):
    cfg = _write(tmp_path, TINY)
    args = ["train", str(cfg), "--out", str(tmp_path / "runs"), "--json", "--no-plot"]
    first = _cli(args)
    assert first.returncode == 0, first.stderr
    run = tmp_path / "runs" / json.loads(first.stdout.strip().splitlines()[-1])["run_id"]
    for name, damage in [("history.parquet", "truncate"), ("params.npz", "delete")]:
        f = run / name
        if damage == "truncate":
            f.write_bytes(f.read_bytes()[:64])
        else:
            f.unlink()
        again = _cli(args)
        assert again.returncode == 0, again.stderr
        warn = [line for line in again.stderr.splitlines() if line.startswith("warning:")]
        assert len(warn) == 1 and name in warn[0] and "Traceback" not in again.stderr
        assert json.loads(again.stdout.strip().splitlines()[-1]) == json.loads(first.stdout.strip().splitlines()[-1])


def test_two_trains_of_one_config_into_one_folder_both_succeed(tmp_path):
    cfg = _write(tmp_path, TINY)
    args = [sys.executable, "-m", "deepcollapse.cli", "train", str(cfg), "--out", str(tmp_path / "runs"), "--json"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-500:] for o in outs]
    objs = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    assert objs[0] == objs[1]
    run = tmp_path / "runs" / objs[0]["run_id"]
    assert (run / "training.png").stat().st_size > 0 and not list(run.glob(".*tmp"))


def _net_config(tmp_path, **fields):
    import yaml

    cfg = dict(kind="net", n_per_class=2, epochs=1, batch_size=None, seeds=1, channels=[2, 2, 4], L=2, width=4,
               **fields)
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_damaged_mnist_file_is_exit_2_naming_it(tmp_path, shared_root):
    """Three flipped bytes in an MNIST .gz (issue 15, #7): exit 2, the file named, what to do."""
    import shutil

    root = tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    for f in (shared_root / "mnist").iterdir():
        shutil.copy(f, root / "mnist" / f.name)
    damaged = root / "mnist" / "train-images-idx3-ubyte.gz"
    raw = bytearray(damaged.read_bytes())
    for i in (1000, 2000, 3000):
        raw[i] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    cfg = _net_config(tmp_path, dataset="mnist", data_root=str(root))
    proc = subprocess.run([sys.executable, "-m", "deepcollapse.cli", "train", str(cfg), "--out", str(tmp_path / "o"),
                           "--no-plot"], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert str(damaged) in proc.stderr and "download it again" in proc.stderr and "verify=False" not in proc.stderr


def test_truncated_cifar_jpeg_is_exit_2_naming_it(tmp_path, shared_root):
    """A truncated JPEG of the CIFAR-10 image folder: exit 2 with its path, not `OSError: Truncated File Read`."""
    import shutil

    src = shared_root / "cifar10-jpeg" / "train"
    dst = tmp_path / "data" / "cifar10-jpeg" / "train"
    for c in sorted(p.name for p in src.iterdir()):
        (dst / c).mkdir(parents=True)
        for name in ("0000.jpg", "0001.jpg"):
            shutil.copy(src / c / name, dst / c / name)
    truncated = dst / "bird" / "0001.jpg"
    truncated.write_bytes(truncated.read_bytes()[:300])
    cfg = _net_config(tmp_path, dataset="cifar10-jpeg", data_root=str(tmp_path / "data"))
    proc = subprocess.run([sys.executable, "-m", "deepcollapse.cli", "train", str(cfg), "--out", str(tmp_path / "o"),
                           "--no-plot"], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert str(truncated) in proc.stderr and "damaged" in proc.stderr
