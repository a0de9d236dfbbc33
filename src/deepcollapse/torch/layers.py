"""Look up a model's layers by their `named_modules` names, with an error that lists the closest names."""

from __future__ import annotations

import difflib

#: The name that stands for the model's own return value (no hook: the output of `model(x)`).
OUTPUT = "output"


def find_modules(model, names) -> dict:
    """{name: module} for every name in `names` (`model.named_modules()` names, e.g. "layer3.1.conv2").

    "output" stands for the model's return value and maps to the model itself. An unknown name raises
    ValueError naming it, with the closest valid names (difflib) or the first few names.
    """
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if not names:
        raise ValueError("layers: give at least one layer name")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"layers: each layer once, got {dup} more than once")
    table = dict(model.named_modules())
    out = {}
    for name in names:
        if name == OUTPUT:
            out[name] = model
            continue
        if name not in table or name == "":
            valid = [n for n in table if n]
            close = difflib.get_close_matches(name, valid, n=5, cutoff=0.5)
            hint = f"closest: {', '.join(close)}" if close else f"e.g. {', '.join(valid[:8])}"
            raise ValueError(f"layer {name!r} is not a module of the model ({hint}; "
                             f"'{OUTPUT}' is the model's output)")
        out[name] = table[name]
    return out
