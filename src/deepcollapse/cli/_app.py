"""The typer applications every command module registers on, and the shared error path.

One way to register a command: a module of this package decorates a function with `@app.command(...)`
(or `@theory_app.command(...)`) and is listed in `deepcollapse.cli.COMMAND_MODULES`. Optional
packages (Ray, Flax, PyTorch) are imported inside the commands, so every module imports without them.
Bad input ends with one message naming the field and what is allowed, exit code 2, no traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

app = typer.Typer(help="Deep neural collapse and low-rank bias: train DUFMs, measure collapse, check the theory.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
theory_app = typer.Typer(help="Analytic solutions and theorem checks (float64).", no_args_is_help=True)
app.add_typer(theory_app, name="theory")


def fail(msg: str, code: int = 2) -> None:
    """Print `error: msg` on stderr and exit with `code` (2: bad input)."""
    from rich.markup import escape

    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(msg)}", highlight=False)
    raise typer.Exit(code)


def validation_message(e: BaseException) -> str:
    """One line for a config error: `field: what is wrong; other.field: ...` (pydantic or ValueError)."""
    from ..config import config_error_line

    return "invalid config: " + config_error_line(e)


# Options that take several values, written the way researchers type them: `--r 4 5 6`.
MULTI_VALUE_OPTIONS = {"--r", "--L", "--K", "--width", "--lam"}


def expand_multi_values(argv: list[str]) -> list[str]:
    """`--r 4 5 6` -> `--r 4 --r 5 --r 6` for the multi-value options of `theory` commands."""
    if "theory" not in argv:
        return argv
    out, i = [], 0
    while i < len(argv):
        tok = argv[i]
        out.append(tok)
        i += 1
        if tok in MULTI_VALUE_OPTIONS:
            first = True
            while i < len(argv) and not argv[i].startswith("--"):
                if not first:
                    out.append(tok)
                out.append(argv[i])
                first = False
                i += 1
    return out


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> None:
    """The `deepcollapse` entry point (warnings print as one line: `warning: ...`).

    Called as the program (argv None: the console script, `python -m deepcollapse.cli`), a command
    that ends normally or with an exit code ends the process with `fast_exit`; called with an argv
    (from Python), it returns or raises SystemExit like any typer app.
    """
    import warnings

    warnings.showwarning = _one_line_warning
    if argv is not None:
        app(args=expand_multi_values(argv), prog_name="deepcollapse")
        return
    try:
        app(args=expand_multi_values(sys.argv[1:]), prog_name="deepcollapse")
    except SystemExit as e:
        fast_exit(e.code)
    fast_exit(0)


def fast_exit(code=0) -> None:
    """End the process as the interpreter would, without its teardown of every module.

    Joins the threads that are not daemons, runs the `atexit` handlers (Ray's shutdown, logging,
    coverage), flushes stdout and stderr, then `os._exit`. What is skipped is the interpreter's
    finalisation: clearing the modules of JAX, pandas, pyarrow, matplotlib and SciPy and the
    destructors of XLA's client, a noticeable part of a short run (docs/speed.md). Every file the
    package writes is closed (and renamed into place) before a command returns, so nothing is lost.
    `code`: a SystemExit code (None: 0; an int; anything else is printed on stderr and gives 1).
    """
    import atexit
    import os
    import threading

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    for t in threading.enumerate():
        if t is not threading.main_thread() and not t.daemon:
            t.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: CPython's own exit status for it is 120
            status = status or 120
    os._exit(status)


def config_or_fail(config, overrides, out=None):
    """The run config in the YAML file `config` with the `--set key=value` overrides, or exit 2 with
    one line: the file is missing, `out` exists and is not a folder, or a field is invalid."""
    from ..config import load_config

    if not config.is_file():
        fail(f"config file not found: {config}")
    if out is not None and out.exists() and not out.is_dir():
        fail(f"--out {out} is not a folder")
    try:
        return load_config(config, overrides or [])
    except Exception as e:  # pydantic ValidationError, YAML errors, bad --set
        fail(validation_message(e))
