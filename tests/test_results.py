"""The run record: written once, read back equal; every damaged or missing file is detected by name;
damaged checkpoints fall back; JSON is strict; temporary names never collide."""

import json
import math
import threading

import numpy as np
import pytest

from deepcollapse import results
from deepcollapse.config import DUFMConfig
from deepcollapse.train import train

TINY = dict(K=3, n=2, L=2, width=4, lam_H=0.01, lam_W=0.01, lr=0.3, init_scale=0.5, steps=40, log_every=20,
            dtype="float64", seeds=2)


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    res = train(DUFMConfig(**TINY), out=out)
    return res, res.run_dir


def _copy(src, dst):
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_record_reads_back_equal(record):
    res, d = record
    assert results.is_complete(d)
    back = results.load_run(d)
    assert back.summary == json.loads(json.dumps(back.summary)) and len(back.summary) == 2
    for k, v in res.logs.items():
        np.testing.assert_array_equal(back.logs[k], v)
    for k, v in res.params.items():
        np.testing.assert_array_equal(back.params[k], v)
    np.testing.assert_array_equal(results.load_params(d, 1)["W"][0], res.lane_params(1)["W"][0])
    summary = json.loads((d / results.SUMMARY).read_text())
    assert set(summary["files"]) == {"config.yaml", "history.parquet", "history.csv", "params.npz"}
    assert summary["files"]["params.npz"] == results.sha256_file(d / "params.npz")


@pytest.mark.parametrize("name, how", [
    ("history.parquet", "truncate"), ("params.npz", "truncate"), ("history.csv", "flip"),
    ("params.npz", "delete"), ("history.parquet", "delete"), ("config.yaml", "flip"),
    ("summary.json", "truncate"),
])
def test_every_damage_is_detected_by_name(record, tmp_path, name, how):
    d = _copy(record[1], tmp_path / "run")
    f = d / name
    if how == "delete":
        f.unlink()
    elif how == "truncate":
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    else:
        b = bytearray(f.read_bytes())
        b[len(b) // 2] ^= 0xFF
        f.write_bytes(bytes(b))
    assert not results.is_complete(d)
    assert name in results.damage(d)
    with pytest.raises(results.RecordError, match=name.replace(".", r"\.")):
        results.load_run(d)


def test_damaged_run_is_recomputed_with_a_warning(record, tmp_path):
    res, src = record
    out = tmp_path / "out"
    d = _copy(src, out / src.name)
    p = d / "params.npz"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match="params.npz"):
        again = train(DUFMConfig(**TINY), out=out)
    assert results.is_complete(d)
    np.testing.assert_array_equal(again.logs["loss"], res.logs["loss"])


def test_damaged_checkpoint_falls_back_then_starts_afresh(tmp_path):
    cfg = DUFMConfig(**(TINY | {"steps": 60}))
    full = train(cfg)
    d = tmp_path / cfg.run_id()
    train(cfg, out=tmp_path, max_chunks=2)
    assert (d / results.CHECKPOINT).exists() and (d / results.PREVIOUS_CHECKPOINT).exists()
    ck = d / results.CHECKPOINT
    ck.write_bytes(ck.read_bytes()[:200])
    with pytest.warns(RuntimeWarning, match="checkpoint.npz"):
        resumed = train(cfg, out=tmp_path)  # from checkpoint.prev.npz (chunk 1)
    np.testing.assert_array_equal(resumed.logs["loss"], full.logs["loss"])
    # both damaged, or of another run: a fresh start, same numbers
    train(DUFMConfig(**(TINY | {"steps": 60, "seeds": 3})), out=tmp_path, max_chunks=1)
    other = tmp_path / DUFMConfig(**(TINY | {"steps": 60, "seeds": 3})).run_id() / results.CHECKPOINT
    d2 = tmp_path / "x"
    d2.mkdir()
    (d2 / results.CHECKPOINT).write_bytes(other.read_bytes())
    with pytest.warns(RuntimeWarning, match="another run"):
        assert results.load_checkpoint(d2, cfg.run_id(), []) is None


def test_strict_json(tmp_path):
    p = tmp_path / "x.json"
    results.save_json(p, {"a": math.inf, "b": [np.float32(np.nan), 1.5], "c": np.int64(3), "d": np.bool_(True)})
    text = p.read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text) == {"a": None, "b": [None, 1.5], "c": 3, "d": True}


def test_concurrent_atomic_writes_never_collide(tmp_path):
    target = tmp_path / "figure.png"
    errors = []

    def write(k):
        try:
            for i in range(50):
                results.atomic_write(target, bytes([k]) * (100 + i))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(target.read_bytes())) == 1 and not list(tmp_path.glob(".*tmp"))


