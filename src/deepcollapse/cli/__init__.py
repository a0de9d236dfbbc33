"""The `deepcollapse` command line: train, quickstart, theory, sweeps, the paper figures, measurements.

    deepcollapse train | quickstart        cli.train
    deepcollapse theory ...                cli.theory
    deepcollapse sweep                     cli.sweep
    deepcollapse census                    cli.census
    deepcollapse list | reproduce | report cli.experiments
    deepcollapse measure                   cli.measure (a PyTorch model, layer by layer)

Every command is registered the same way (`cli._app`); side effects (files, progress bars, tables)
live here, the numerics elsewhere.
"""

from __future__ import annotations

import importlib

from ._app import app, expand_multi_values, main

COMMAND_MODULES = ("train", "theory", "sweep", "experiments", "measure", "census")

for _name in COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_name}")

__all__ = ["COMMAND_MODULES", "app", "expand_multi_values", "main"]
