"""deepcollapse: deep neural collapse (DNC) and low-rank bias in deep unconstrained features models.

Implements the models and quantities of
  - Súkeník, Lampert, Mondelli, "Neural collapse vs. low-rank bias: Is deep neural collapse really
    optimal?", NeurIPS 2024 (MSE, ReLU L-DUFM; the SRG low-rank solution),
  - Garrod, Keating, "The Persistence of Neural Collapse Despite Low-Rank Bias" (cross-entropy deep
    linear and ReLU UFM; reduced loss, landscape theorems),
  - Zangrando et al., "Provable Emergence of Deep Neural Collapse and Low-Rank Bias in
    L2-Regularized Nonlinear Networks" (total cluster variation, distance to rank K).

Conventions (column-major features, one-hot Y, per-factor weight decay) are those of SPEC.md,
summarised in the README. float64 is enabled so that theorems can be checked to round-off; every
array the package creates states its dtype, so float32 training stays float32.
"""

import os

import jax

jax.config.update("jax_enable_x64", True)


def _cpu_devices() -> int:
    """How many XLA CPU devices to expose: $DEEPCOLLAPSE_CPU_DEVICES, else one per usable core.

    The DUFM engine splits its lanes across them (`engine.Program`): at the engine's small shapes one
    single-threaded program per core runs faster than one program whose matmuls use every core.
    """
    env = os.environ.get("DEEPCOLLAPSE_CPU_DEVICES", "").strip()
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


try:  # only before JAX's backends start; a user who started them already keeps their setting
    jax.config.update("jax_num_cpu_devices", _cpu_devices())
except RuntimeError:
    pass


def _compilation_cache() -> str | None:
    """JAX's persistent compilation cache folder: $DEEPCOLLAPSE_JAX_CACHE ("off" disables it), else
    $XDG_CACHE_HOME/deepcollapse/jax (~/.cache/...). A run whose programs were compiled before, in any
    process, loads them from there instead of compiling again (seconds saved per run)."""
    env = os.environ.get("DEEPCOLLAPSE_JAX_CACHE", "").strip()
    if env.lower() in ("off", "0", "none", "false"):
        return None
    if env:
        return os.path.expanduser(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "deepcollapse", "jax")


if jax.config.jax_compilation_cache_dir is None and (_cache := _compilation_cache()) is not None:
    jax.config.update("jax_compilation_cache_dir", _cache)  # a user's own setting is kept
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # the metrics compile fast

__version__ = "0.1.0"
