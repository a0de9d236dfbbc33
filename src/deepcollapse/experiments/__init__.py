"""Paper figures as registered experiments: `list`, `reproduce`, `report` (see `registry`).

    deepcollapse list
    deepcollapse reproduce sukenik-fig2-dufm [--size smoke|quick|medium|full] [--out DIR] [--backend ray]
    deepcollapse report [--out DIR]

Modules: `sukenik`, `garrod`, `zangrando` (DUFM, theory and MLP figures), `nets_figures` (real
networks); `registry` (Experiment, sizes), `runner` (reproduce), `report` (the offline page), `common`
(figure helpers). Each figure's unstated settings and their reasons are its `choices`, recorded in
its experiment.json; what the runs show is in docs/findings.md.
"""

from deepcollapse.experiments.registry import Data, Experiment, all_experiments, get, parse_size, register
from deepcollapse.experiments.runner import reproduce

__all__ = ["Data", "Experiment", "all_experiments", "get", "parse_size", "register", "reproduce", "write_report"]


def write_report(out):
    """See `deepcollapse.experiments.report.write_report`."""
    from deepcollapse.experiments.report import write_report as _w

    return _w(out)
