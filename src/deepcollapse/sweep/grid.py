"""A sweep's points: every combination of a grid on top of a base config, grouped into programs."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Sequence

from ..config import RunConfig, config_error_line, parse_config

MAX_LANES = 64  # lanes (config x seed) of one compiled program


def expand_grid(base: dict, grid: dict[str, list]) -> list[RunConfig]:
    """Every combination of the grid values on top of `base`, as validated configs.

    Keys are config fields; dotted keys set nested fields ("optimizer.name"). `kind: net` in base (or
    in the grid) makes the points real-network configs (`NetConfig`), else DUFM configs. The order is
    that of `itertools.product` over the grid keys in their given order (last key varies fastest).
    An empty grid gives the single config `base`. An invalid point is a ValueError naming the point
    and the field, in one line.
    """
    if not isinstance(base, dict):
        raise ValueError(f"base: expected a mapping of config fields, got {type(base).__name__}")
    if not isinstance(grid, dict):
        raise ValueError(f"grid: expected a mapping field -> list of values, got {type(grid).__name__}")
    for key, values in grid.items():
        if not isinstance(values, (list, tuple)) or len(values) == 0:
            raise ValueError(f"grid: {key!r} needs a non-empty list of values, got {values!r}")
    keys = list(grid)
    configs = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        data = json.loads(json.dumps(base))
        for key, value in zip(keys, combo):
            _set_dotted(data, key, value)
        try:
            configs.append(parse_config(data))
        except ValueError as e:
            point = ", ".join(f"{k}={v!r}" for k, v in zip(keys, combo))
            raise ValueError(f"grid point ({point}) is not a valid config: {config_error_line(e)}") from None
    return configs


def _set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    target = data
    for p in parts[:-1]:
        nxt = target.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ValueError(f"grid: {key!r} goes into {p!r}, which is not a mapping")
        target = nxt
    target[parts[-1]] = value


def read_sweep_file(path: str | Path) -> list[RunConfig]:
    """Configs of a sweep YAML file with `base:` (config fields) and `grid:` (field -> list of values).

    A file that is not YAML, or not a mapping with those keys, is a ValueError naming the file.
    """
    import yaml

    try:
        with open(path) as f:
            spec = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read the sweep file: {e.strerror}") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: expected a mapping with keys 'base' and 'grid', got {type(spec).__name__}")
    unknown = set(spec) - {"base", "grid"}
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; allowed are 'base' and 'grid'")
    return expand_grid(spec.get("base") or {}, spec.get("grid") or {})


def plan_groups(configs: Sequence[RunConfig], max_lanes: int = MAX_LANES) -> list[list[int]]:
    """Indices of configs grouped into programs: equal shape keys, at most `max_lanes` lanes each.

    Groups keep first-seen order; a config with more seeds than `max_lanes` forms a group alone, and so
    does every network config (its shape key is its run id).
    """
    if max_lanes < 1:
        raise ValueError(f"max_lanes: must be >= 1, got {max_lanes}")
    same_shape: dict[str, list[int]] = {}
    for i, c in enumerate(configs):
        same_shape.setdefault(c.shape_key(), []).append(i)
    groups: list[list[int]] = []
    for members in same_shape.values():
        current: list[int] = []
        lanes = 0
        for i in members:
            n = len(configs[i].seed_list)
            if current and lanes + n > max_lanes:
                groups.append(current)
                current, lanes = [], 0
            current.append(i)
            lanes += n
        groups.append(current)
    return groups
