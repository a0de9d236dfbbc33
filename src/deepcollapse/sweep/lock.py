"""Exclusive ownership of one point folder while a worker trains it.

A `PointLock` is an OS file lock (`filelock.FileLock`: flock(2) on `<point>/.lock`) taken without
waiting. The kernel releases it when its process ends, however it ends (kill -9 included), so a
point is never left locked by a dead worker and no heartbeat or timeout is needed; on NFS v4 a dead
node's locks go when its lease expires. The lock file itself stays in the folder: whether a point is
locked is a question for the lock (`is_locked`), not for the file's existence.
"""

from __future__ import annotations

from pathlib import Path

import filelock

LOCK_NAME = ".lock"


class PointLock:
    """`acquire()` -> True if this process now owns point folder `d`, False if another owner holds it."""

    def __init__(self, d: str | Path):
        self.path = Path(d) / LOCK_NAME
        self._lock: filelock.FileLock | None = None

    @property
    def held(self) -> bool:
        return self._lock is not None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(self.path, timeout=0, thread_local=False)
        try:
            lock.acquire()
        except filelock.Timeout:
            return False
        self._lock = lock
        return True

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
        return False


def is_locked(d: str | Path) -> bool:
    """True if some process holds the lock of point folder `d` right now."""
    probe = PointLock(d)
    if not probe.path.exists():
        return False
    if probe.acquire():
        probe.release()
        return False
    return True
