"""Ends what is left of a local Ray instance once the process that started it is gone.

`RayBackend` runs this file as a script (it imports nothing from deepcollapse) right after it has
started a local Ray instance:

    python _ray_reaper.py PSUTIL_PARENT_DIR PID...

PID...: the processes Ray started for the instance (GCS server, raylet, monitor, ...). Until its
standard input reaches end of file, which happens when the driver closes it after `ray.shutdown()`
or when the driver dies, however it dies (kill -9 included), it records those processes and their
descendants once a second. Then it sends SIGTERM to every recorded process still alive and SIGKILL
to those still alive 1 s later, and exits.

Why: Ray ties the processes it starts to the driver (on Linux they get SIGKILL when the driver
dies), but the raylet's children are not tied to it: the runtime-env agent and the dashboard agent
notice the raylet's death at once, then wait up to 60 s on the dead GCS to report it, listening all
the while. Recorded processes are identified by pid and start time, so a reused pid is never hit.

PSUTIL_PARENT_DIR: a folder to import psutil from if this interpreter has none (Ray ships one).
"""

from __future__ import annotations

import signal
import sys
import threading

POLL_S = 1.0  # how often the process tree is recorded
GRACE_S = 1.0  # SIGTERM, then SIGKILL after this long


def main(argv: list[str]) -> int:
    sys.path.append(argv[1])
    import psutil

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the driver, which shuts Ray down itself
    roots = []
    for pid in argv[2:]:
        try:
            roots.append(psutil.Process(int(pid)))
        except psutil.Error:
            pass
    known: dict[int, psutil.Process] = {}

    def record() -> None:
        for root in roots:
            try:
                if not root.is_running():
                    continue
                for p in [root, *root.children(recursive=True)]:
                    old = known.get(p.pid)
                    if old is None or not old.is_running():  # new, or a pid reused by another process
                        known[p.pid] = p
            except psutil.Error:
                pass

    eof = threading.Event()

    def wait_eof() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            eof.set()

    threading.Thread(target=wait_eof, daemon=True).start()
    record()
    while not eof.wait(POLL_S):
        record()
    record()
    alive = []
    for p in known.values():
        try:
            if p.is_running():  # False if the pid now belongs to another process
                p.terminate()
                alive.append(p)
        except psutil.Error:
            pass
    _, left = psutil.wait_procs(alive, timeout=GRACE_S)
    for p in left:
        try:
            p.kill()
        except psutil.Error:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
