"""Point locks: exclusive between owners, released on release and by the kernel when the holder dies."""

import os
import signal
import subprocess
import sys
import time

from deepcollapse import sweep


def test_lock_is_exclusive_and_released(tmp_path):
    d = tmp_path / "p"
    a = sweep.PointLock(d)
    assert a.acquire() and a.held and sweep.is_locked(d)
    assert not sweep.PointLock(d).acquire()  # a second owner, even in this process, is refused
    a.release()
    assert not a.held and not sweep.is_locked(d)
    with sweep.PointLock(d) as b:
        assert b.acquire()
        sweep.PointLock(d).release()  # never acquired: must not free b's lock
        assert sweep.is_locked(d)
    assert not sweep.is_locked(d)
    assert not sweep.is_locked(tmp_path / "never-locked")


def test_lock_of_a_killed_process_is_free_at_once(tmp_path):
    d = tmp_path / "p"
    code = ("import sys, time; from deepcollapse.sweep import PointLock; l = PointLock(sys.argv[1]); "
            "assert l.acquire(); print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(d)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert sweep.is_locked(d) and not sweep.PointLock(d).acquire()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    t0 = time.time()
    assert sweep.PointLock(d).acquire() and time.time() - t0 < 1.0
