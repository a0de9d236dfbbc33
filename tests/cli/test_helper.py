"""The command line's helper process (`cli.helper`) and its fast exit (`cli._app.fast_exit`): the
record and figure a forked helper writes are those of a run in one process, a helper that dies is
replaced by the first process, and the process ends with its exit code after its atexit handlers,
its threads and its output."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from deepcollapse import results
from deepcollapse.cli.helper import HelperProcess, _fork_is_safe
from deepcollapse.config import DUFMConfig

TINY = dict(K=3, n=2, L=2, width=4, lam_H=0.01, lam_W=0.01, lr=0.3, init_scale=0.5, steps=40, log_every=20,
            seeds=2)


RUN = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from rich.console import Console
    from deepcollapse.cli.train import run_training
    from deepcollapse.config import DUFMConfig

    res = run_training(DUFMConfig(**json.loads(sys.argv[2])), Path(sys.argv[1]), Console(stderr=True))
    print(json.dumps({"run_dir": str(res.run_dir), "imported": sorted(
        m for m in ("matplotlib", "pandas", "scipy.optimize") if m in sys.modules)}))
""")


def _train(out, helper: str) -> dict:
    """`run_training` of TINY in a fresh process; its run folder and which of the end-of-run
    libraries that process imported."""
    env = {**os.environ, "DEEPCOLLAPSE_HELPER_PROCESS": helper}
    proc = subprocess.run([sys.executable, "-c", RUN, str(out), json.dumps(TINY)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_forked_helper_writes_the_record_of_a_run_in_one_process(tmp_path):
    forked, alone = _train(tmp_path / "forked", "1"), _train(tmp_path / "alone", "0")
    assert forked["imported"] == []  # the first process left SciPy's optimiser, pandas and matplotlib to the helper
    assert alone["imported"] == ["matplotlib", "pandas", "scipy.optimize"]
    a, b = Path(forked["run_dir"]), Path(alone["run_dir"])
    assert a.name == b.name and results.is_complete(a) and results.is_complete(b)
    assert (a / "training.png").stat().st_size > 10_000 and (b / "training.png").is_file()
    for name in ("config.yaml", "history.csv", "params.npz"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    pd.testing.assert_frame_equal(pd.read_parquet(a / "history.parquet"), pd.read_parquet(b / "history.parquet"))
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert sa["lanes"] == sb["lanes"] and sa["files"] == sb["files"]
    assert sa["lanes"][0]["best_construction"] is not None  # the oracle took the helper's construction
    assert not (a / "checkpoint.npz").exists()


def test_no_fork_once_jax_runs_here_the_work_is_done_in_this_process(tmp_path):
    import jax.numpy as jnp

    jnp.zeros(1).block_until_ready()  # JAX's backend (its threads) started in this process
    assert not _fork_is_safe()
    res = results.TrainResult(configs=[DUFMConfig(**TINY)], lanes=[results.Lane(0, 0, 0)], steps=np.array([0]),
                              logs={"loss": np.ones((1, 1))}, params={"H1": np.zeros((1, 4, 6))},
                              diverged_at=np.array([-1]), summary=[{"lane": 0, "seed": 0}])
    with HelperProcess.start(res.configs[0], plot=False) as helper:
        assert not helper.forked
        helper.write_run(res, tmp_path / "run")
        assert results.is_complete(tmp_path / "run")  # written at once, before any wait


HELPER_DIES = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    import numpy as np
    from deepcollapse import results
    from deepcollapse.cli.helper import HelperProcess
    from deepcollapse.config import DUFMConfig

    FIRST = os.getpid()

    def die_in_the_helper():
        if os.getpid() != FIRST:
            os._exit(3)

    cfg = DUFMConfig(K=3, n=2, L=2, width=4, steps=40, log_every=20, seeds=1)
    res = results.TrainResult(configs=[cfg], lanes=[results.Lane(0, 0, 0)], steps=np.array([0, 20]),
                              logs={"loss": np.ones((2, 1))}, params={"H1": np.zeros((1, 4, 6))},
                              diverged_at=np.array([-1]), summary=[{"lane": 0, "seed": 0}])
    with HelperProcess.start(cfg, plot=False) as helper:
        assert helper.forked
        helper._submit(die_in_the_helper)
        helper.write_run(res, Path(sys.argv[1]))
        helper.wait()
        assert not helper.forked
    print(results.is_complete(sys.argv[1]), os.getpid())
""")


def test_work_of_a_helper_that_died_is_done_in_the_first_process(tmp_path):
    proc = subprocess.run([sys.executable, "-c", HELPER_DIES, str(tmp_path / "run")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == "True"


FAST_EXIT = textwrap.dedent("""
    import atexit, sys, threading, time
    from pathlib import Path
    from deepcollapse.cli._app import fast_exit

    atexit.register(lambda: print("atexit ran"))
    def late():
        time.sleep(0.3)
        Path(sys.argv[1]).write_text("written")
    threading.Thread(target=late).start()
    print("x" * 100000, end="")
    fast_exit(int(sys.argv[2]) if sys.argv[2] != "none" else None)
""")


def test_fast_exit_keeps_exit_code_output_threads_and_atexit(tmp_path):
    for code, expected in (("3", 3), ("0", 0), ("none", 0)):
        flag = tmp_path / f"flag{code}"
        proc = subprocess.run([sys.executable, "-c", FAST_EXIT, str(flag), code], capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == expected
        assert proc.stdout == "x" * 100000 + "atexit ran\n"
        assert flag.read_text() == "written"  # a thread that is not a daemon was joined


def test_the_command_line_ends_with_its_exit_codes(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "deepcollapse.cli", "list"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "sukenik-fig2" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "deepcollapse.cli", "train", str(tmp_path / "nope.yaml")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "not found" in bad.stderr
    usage = subprocess.run([sys.executable, "-m", "deepcollapse.cli", "train", "--nope"], capture_output=True,
                           text=True, timeout=60)
    assert usage.returncode == 2 and "No such option" in usage.stderr
