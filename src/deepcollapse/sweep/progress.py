"""The progress bar of a sweep: points done, and the steps of the group running in this process."""

from __future__ import annotations


class SweepProgress:
    """A rich progress bar over points (and over the steps of the running group, in process)."""

    def __init__(self, enabled: bool, total: int):
        self.enabled = enabled
        self.total = total

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                               TimeElapsedColumn(), console=Console(stderr=True))
            self._p.__enter__()
            self._points = self._p.add_task("points", total=self.total)
            self._steps = self._p.add_task("steps", total=1, visible=False)
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._p.__exit__(*exc)
        return False

    def points_done(self, n: int) -> None:
        if self.enabled:
            self._p.advance(self._points, n)

    def steps(self, step: int, total: int, loss: float, n_div: int) -> None:
        if self.enabled:
            self._p.update(self._steps, completed=step, total=total, visible=True,
                           description=f"steps (mean loss {loss:.3g}, {n_div} diverged)")
