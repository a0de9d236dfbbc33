"""`deepcollapse theory ...`: tables of the analytic results (each with --json).

Commands are registered on `app` by the modules listed in `_COMMAND_MODULES`.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(help="Analytic solutions and theorem checks (float64).", no_args_is_help=True)

_COMMAND_MODULES = (
    "deepcollapse.theory.commands_mse",
    "deepcollapse.theory.commands_ce",
    "deepcollapse.theory.commands_landscape",
)

for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(_name)
    except ModuleNotFoundError as e:  # a command module not written yet
        if e.name != _name:
            raise
