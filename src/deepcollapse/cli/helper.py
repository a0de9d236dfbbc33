"""The helper process of `deepcollapse train` and `quickstart`: the end of a run that needs no JAX.

A run ends with work that is pure Python and NumPy: the oracle's best known construction (SciPy's
optimiser, `reference.best_construction`), the record's history table (pandas, pyarrow) and the
figure (matplotlib). In one process these imports and this drawing hold the interpreter's lock,
which the run's own tracing needs too, so they add to a short run's time (docs/speed.md). `HelperProcess` forks a second process before JAX starts its backend: it
imports those libraries and computes the best construction while the first process trains, then
writes the record (`results.write_run`) and draws the figure (`plots.plot_run`) from the finished
`TrainResult`. The record is the one a single process writes (summary.json's `written` time aside;
tests/cli/test_helper.py).

Where a fork is not safe (not Linux, or JAX's backend already started in this process, as in a test
run in-process) or DEEPCOLLAPSE_HELPER_PROCESS=0, the helper does everything in this process
and `preload` imports the libraries in a thread instead. A helper process that dies is replaced by
this process too: every call falls back to running here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .. import reference, results


def _fork_is_safe() -> bool:
    """A fork copies one thread: safe on Linux before JAX starts its backend (its thread pools),
    unless DEEPCOLLAPSE_HELPER_PROCESS=0. (macOS has os.fork, but its system libraries, Accelerate
    among them, are not safe to use in a forked child.)"""
    if os.environ.get("DEEPCOLLAPSE_HELPER_PROCESS", "1").strip().lower() in ("0", "off", "false", "no"):
        return False
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    try:
        from jax._src import xla_bridge

        return not xla_bridge.backends_are_initialized()
    except (ImportError, AttributeError):  # a JAX that cannot tell: assume its threads exist
        return False


def _quiet_worker() -> None:
    """The helper ignores Ctrl-C: the terminal sends it to the whole process group, and the first
    process ends the helper itself (`HelperProcess.close`)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def warm(plot: bool) -> None:
    """In the helper, after the best construction: the imports of the record and the figure."""
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    if plot:
        from .. import plots  # noqa: F401


def plot_run(res: results.TrainResult, formats) -> list[Path]:
    """`plots.plot_run` into res.run_dir (imported here: the first process never needs matplotlib)."""
    from ..plots import plot_run as plot

    return plot(res, res.run_dir, formats=formats)


def preload(plot: bool) -> None:
    """Without a helper process: import what the end of a run needs (scipy.optimize and the
    constructions for the oracle, pandas and pyarrow for the record, matplotlib for the figure) in a
    background thread while the run traces and computes. XLA releases the interpreter's lock while
    it computes, so in a long run the imports come off the critical path."""
    import threading

    def work():
        import importlib

        for name in ("scipy.optimize", "deepcollapse.theory.constructions", "pandas", "pyarrow.parquet") + (
                ("deepcollapse.plots",) if plot else ()):
            importlib.import_module(name)

    threading.Thread(target=work, name="deepcollapse-preload", daemon=True).start()


class HelperProcess:
    """A forked helper for one run's end (see the module's docstring); a context manager.

    `start(cfg, plot)` forks it (or, where that is not safe, starts `preload`) and has it compute
    the config's best construction, which `reference.best_construction` then takes from it.
    `write_run(res, run_dir)` (the signature of `results.write_run`, so that it can be handed to
    `train(write=...)`) and `plot_run(res, formats)` hand their work to the helper, which does it in
    order; `wait()` waits for it and raises what it raised. Without a helper, or once it has died,
    the work is done here.
    """

    def __init__(self):
        self._pool = None
        self._work: list[tuple] = []  # (future, fn, args) handed to the helper, not yet waited for

    @classmethod
    def start(cls, cfg, plot: bool) -> "HelperProcess":
        helper = cls()
        if not _fork_is_safe():
            preload(plot)
            return helper
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        try:
            helper._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"),
                                               initializer=_quiet_worker)
            # first what the summary waits for, then the imports
            reference.prefetch_best_construction(cfg, helper._pool.submit(reference.best_construction, cfg))
            helper._pool.submit(warm, plot)
        except (OSError, RuntimeError, ValueError):  # no fork here after all: run here
            helper.close()
            preload(plot)
        return helper

    @property
    def forked(self) -> bool:
        """Whether the work goes to a helper process (False: done in this process)."""
        return self._pool is not None

    def _submit(self, fn, *args):
        if self._pool is None:
            return fn(*args)
        self._work.append((self._pool.submit(fn, *args), fn, args))
        return None

    def write_run(self, res: results.TrainResult, run_dir) -> Path:
        """`results.write_run(res, run_dir)`, in the helper (done when `wait` returns)."""
        self._submit(results.write_run, res, run_dir)
        return Path(run_dir)

    def plot_run(self, res: results.TrainResult, formats=("png",)) -> None:
        """The run's figure (`plots.plot_run` into res.run_dir), in the helper (done when `wait` returns)."""
        self._submit(plot_run, res, tuple(formats))

    def wait(self) -> None:
        """Wait for the work handed to the helper, in order; raise the first error it raised. Work
        whose helper died is done here."""
        from concurrent.futures.process import BrokenProcessPool

        work, self._work = self._work, []
        for i, (future, _, _) in enumerate(work):
            try:
                future.result()
            except BrokenProcessPool:
                self.close()
                for _, fn, args in work[i:]:
                    fn(*args)
                return

    def close(self) -> None:
        """End the helper process; work not yet done is cancelled."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "HelperProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
