"""Paper figures as registered experiments: `list`, `reproduce`, `report` (see `registry`).

    deepcollapse list
    deepcollapse reproduce sukenik-fig2-dufm [--quick | --smoke] [--out DIR] [--backend ray]
    deepcollapse report [--out DIR]

Sizes: full = the paper's settings, quick = minutes on a 2-core CPU, smoke = seconds (CI).
Settings the papers do not state (chosen once; each run's experiment.json records them):

| experiment | chosen settings |
| --- | --- |
| all Súkeník et al. DUFM | n = 5 per class, init std 0.3, 30000 steps (quick 20000), float32, rank rtol 1e-3, "found DNC" = `train.dnc_verdict` |
| sukenik-fig1 | SRG widths (r, r, r, K) = (5, 5, 5, 10), lam = 0.004, n = 5 |
| sukenik-fig3-ratio | lam = 0.004 on every factor, n = 5, SRG variant "spec" |
| sukenik-fig3-rank-vs-wd | K = 10 (one caption version says 15), lam = 2^-12..2^-6, 5 seeds; rank = mean over H1..H(L-1) |
| sukenik-fig3-pdnc-vs-width | widths 10..100, init std min(0.3, 0.3 sqrt(30/width)), 10 seeds |
| sukenik-fig5 / fig6 | best of 3 seeds shown; fig6 init std 0.2 (0.3 diverges at L = 7) |
| all Garrod & Keating | K = 10, n = 5, lr 0.5, init std 0.1, 60000 steps (quick 20000) |
| garrod-fig2 / fig5 | widths 10..400 at lam 2^-10; lam 2^-8..2^-14 at width 70; 10 seeds; shared runs |
| all Zangrando et al. | K = 10 Gaussian clusters in R^32, n = 10, L = 4, width 32, ReLU, MSE, GD lr 0.2, init std 1/sqrt(32), 20000 steps (quick 6000) |
| zangrando-fig1 | lam in {1e-3, 2e-3, 3e-3, 5e-3, 1e-2} x sigma in {0, 0.1, 0.2, 0.3, 0.5}, 3 seeds |
| zangrando-fig3 / fig5 | lam = 3e-3, sigma = 0.3; 100 initialisations (fig3), one (fig5) |
| zangrando-fig2 | not implemented: the prediction's formula is not in the project's copy of the paper |

Details and reasons: the docstrings of `sukenik`, `garrod` and `zangrando`.
"""

from deepcollapse.experiments.registry import Data, Experiment, all_experiments, get, register
from deepcollapse.experiments.runner import reproduce

__all__ = ["Data", "Experiment", "all_experiments", "get", "register", "reproduce", "write_report"]


def write_report(out):
    """See `deepcollapse.experiments.report.write_report`."""
    from deepcollapse.experiments.report import write_report as _w

    return _w(out)
