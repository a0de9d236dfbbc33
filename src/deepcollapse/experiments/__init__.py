"""Paper figures as registered experiments: `list`, `reproduce`, `report` (see `registry`)."""

from deepcollapse.experiments.registry import Data, Experiment, all_experiments, get, register
from deepcollapse.experiments.runner import reproduce

__all__ = ["Data", "Experiment", "all_experiments", "get", "register", "reproduce", "write_report"]


def write_report(out):
    """See `deepcollapse.experiments.report.write_report`."""
    from deepcollapse.experiments.report import write_report as _w

    return _w(out)
