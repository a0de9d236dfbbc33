"""Validated configuration of an L-DUFM training run (SPEC.md, "The deep unconstrained features model").

A config is data: it is hashed into the run id, written next to the results, and read back from YAML.
Every field that a paper leaves open has a default here and is an explicit option.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ACTIVATIONS = ("relu", "linear")
LOSSES = ("mse", "ce")

# Fields that may differ between lanes of one compiled program (same array shapes).
LANE_FIELDS = ("lam_H", "lam_W", "lr", "init_scale")


class OptimizerConfig(BaseModel):
    """An Optax optimizer by name with its keyword arguments; the learning rate comes from `lr`.

    The papers use plain full-batch gradient descent: `sgd` with no momentum (the default).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = "sgd"
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known_optimizer(cls, v: str) -> str:
        import optax

        if not callable(getattr(optax, v, None)):
            raise ValueError(f"unknown optax optimizer {v!r}; use a name such as 'sgd', 'adam', 'adamw'")
        return v


class GaussianData(BaseModel):
    """Fixed input data: K Gaussian clusters in R^dim (Zangrando et al. (2025), Fig. 1's synthetic data).

    X (dim x N, columns class by class) = `deepcollapse.data.gaussian.gaussian_clusters(K, dim, n,
    sigma, seed=seed, mean_scale=mean_scale)[0]`: centres of norm `mean_scale` in random directions,
    within-class std `sigma` (sigma = 0: every sample is its class centre). `seed` is the data's
    seed, independent of the run's initialisation seeds (every lane of a run sees the same X).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["gaussian"] = "gaussian"
    dim: int = Field(..., ge=1, description="input dimension d_1")
    sigma: float = Field(..., ge=0, description="within-class standard deviation")
    mean_scale: float = Field(1.0, gt=0, description="norm of every cluster centre")
    seed: int = Field(0, description="seed of the data (centres and noise)")


class DUFMConfig(BaseModel):
    """One L-DUFM run, many seeds.

    Model (SPEC.md): Z_1 = W_1 H_1, H_{l+1} = act(Z_l), Z = W_L H_L, loss = fit(Z, Y)
    + lam_H/2 ||H_1||^2 + sum_l lam_l/2 ||W_l||^2. `width` gives d_1..d_L (H_1 is d_1 x N,
    W_l is d_{l+1} x d_l, d_{L+1} = K). Initial entries are N(0, init_scale^2).

    With `data` set the model is an MLP (no biases) trained on fixed data: H_1 = X (data.dim x N,
    see `GaussianData`) is given, not optimised, and lam_H is unused (ignored; it still may vary
    between lanes but changes nothing). Then d_1 = data.dim and `width` gives only the hidden widths
    d_2..d_L: one int for all, or a list of L-1 (W_1 is d_2 x dim; L = 1: no hidden widths, W_1 is
    K x dim, an int `width` is ignored and a list must be empty). Each hidden width must be >= K;
    data.dim may be anything >= 1. Fixed data needs balanced classes (`n`, not `class_sizes`).
    `widths` is always d_1..d_L (with data: (dim, d_2, ..., d_L)).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    K: int = Field(10, description="number of classes")
    n: int | None = Field(None, description="samples per class (balanced); or give class_sizes")
    class_sizes: tuple[int, ...] | None = Field(None, description="samples of each class (imbalanced)")
    L: int = Field(4, description="number of weight layers W_1..W_L")
    width: int | tuple[int, ...] = Field(30, description="d_1..d_L: one int for all, or a list of L (with data: d_2..d_L, L-1 values)")
    activation: Literal["relu", "linear"] = "relu"
    loss: Literal["mse", "ce"] = "mse"
    lam_H: float = Field(0.004, description="weight decay on the free features H_1 (unused with data)")
    lam_W: float | tuple[float, ...] = Field(0.004, description="weight decay of W_1..W_L: one or L values")
    init_scale: float = Field(0.3, description="std of the Gaussian initialisation of every factor")
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    lr: float = Field(0.5, description="learning rate")
    steps: int = Field(30000, description="full-batch gradient steps")
    seeds: int | tuple[int, ...] = Field(10, description="a count (seeds 0..count-1) or an explicit list")
    dtype: Literal["float32", "float64"] = "float32"
    log_every: int = Field(500, description="steps between logged metrics (one compiled chunk)")
    rank_rtol: float = Field(1e-3, description="numerical rank: singular values above rtol * s_max")
    data: GaussianData | None = Field(
        None, description="fixed input data H_1 = X (an MLP on data); None: free features H_1")

    @field_validator("K")
    @classmethod
    def _k(cls, v: int) -> int:
        if v < 2:
            raise ValueError(f"must be >= 2 classes, got {v}")
        return v

    @field_validator("L")
    @classmethod
    def _l(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"must be >= 1 layer (L=1 is the classical UFM), got {v}")
        return v

    @field_validator("n")
    @classmethod
    def _n(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError(f"must be >= 1 sample per class, got {v}")
        return v

    @field_validator("class_sizes")
    @classmethod
    def _sizes(cls, v):
        if v is not None and any(s < 1 for s in v):
            raise ValueError(f"every class needs >= 1 sample, got {list(v)}")
        return v

    @field_validator("lam_H", "init_scale")
    @classmethod
    def _nonneg(cls, v: float, info) -> float:
        if not v >= 0 or v != v:
            raise ValueError(f"must be >= 0, got {v}")
        return v

    @field_validator("lr")
    @classmethod
    def _lr(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"learning rate must be > 0, got {v}")
        return v

    @field_validator("steps", "log_every")
    @classmethod
    def _positive_int(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"must be >= 1, got {v}")
        return v

    @field_validator("rank_rtol")
    @classmethod
    def _rtol(cls, v: float) -> float:
        if not 0 < v < 1:
            raise ValueError(f"must be in (0, 1), got {v}")
        return v

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        if isinstance(v, int):
            if v < 1:
                raise ValueError(f"need >= 1 seed, got {v}")
        elif len(v) == 0 or len(set(v)) != len(v):
            raise ValueError(f"need a non-empty list of distinct seeds, got {list(v)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "DUFMConfig":
        if (self.n is None) == (self.class_sizes is None):
            if self.n is None:
                object.__setattr__(self, "n", 5)
            else:
                raise ValueError("give either n (balanced) or class_sizes (imbalanced), not both")
        if self.class_sizes is not None and len(self.class_sizes) != self.K:
            raise ValueError(f"class_sizes: need K={self.K} sizes, got {len(self.class_sizes)}")
        if self.data is not None and self.class_sizes is not None:
            raise ValueError("data: fixed data needs balanced classes; give n, not class_sizes")
        if self.data is None:
            widths, need = self.widths, f"L={self.L} widths"
        else:
            widths, need = self.hidden_widths, f"L-1={self.L - 1} hidden widths d_2..d_L (d_1 = data.dim)"
        if len(widths) != (self.L if self.data is None else self.L - 1):
            raise ValueError(f"width: need one int or {need}, got {len(widths)}")
        if widths and min(widths) < self.K:
            raise ValueError(
                f"width: every {'hidden ' if self.data is not None else ''}layer needs width >= K={self.K} "
                f"so the output can reach rank K, got {list(widths)}"
            )
        lams = self.lams_W
        if len(lams) != self.L:
            raise ValueError(f"lam_W: need one value or L={self.L} values, got {len(lams)}")
        if any(not (x >= 0) for x in lams):
            raise ValueError(f"lam_W: every weight decay must be >= 0, got {list(lams)}")
        if self.log_every > self.steps:
            object.__setattr__(self, "log_every", self.steps)
        if self.steps % self.log_every:
            raise ValueError(f"log_every: must divide steps={self.steps}, got {self.log_every}")
        return self

    # ---- derived views -------------------------------------------------------------------------
    @property
    def sizes(self) -> tuple[int, ...]:
        """n_1..n_K."""
        return tuple(self.class_sizes) if self.class_sizes is not None else (self.n,) * self.K

    @property
    def N(self) -> int:
        return sum(self.sizes)

    @property
    def hidden_widths(self) -> tuple[int, ...]:
        """d_2..d_L as `width` gives them with fixed data (L-1 values; an int is repeated)."""
        return (self.width,) * (self.L - 1) if isinstance(self.width, int) else tuple(self.width)

    @property
    def widths(self) -> tuple[int, ...]:
        """d_1..d_L (with fixed data: (data.dim, d_2, ..., d_L))."""
        if self.data is not None:
            return (self.data.dim, *self.hidden_widths)
        return (self.width,) * self.L if isinstance(self.width, int) else tuple(self.width)

    @property
    def lams_W(self) -> tuple[float, ...]:
        """lam_1..lam_L."""
        return (float(self.lam_W),) * self.L if isinstance(self.lam_W, (int, float)) else tuple(self.lam_W)

    @property
    def seed_list(self) -> tuple[int, ...]:
        return tuple(range(self.seeds)) if isinstance(self.seeds, int) else tuple(self.seeds)

    def shape_key(self) -> str:
        """Hash of everything but the lane fields and seeds: configs with equal keys share one program.

        `data` is part of the key as a whole (not only its dim): one program holds one data matrix X.
        """
        d = self._dump(exclude={*LANE_FIELDS, "seeds"})
        d["lams_W_len"] = self.L
        return _hash(d)

    def run_id(self) -> str:
        """Content hash of the whole config: the run's id and results folder name."""
        return _hash(self._dump())

    def _dump(self, exclude=None) -> dict:
        """The JSON dump that is hashed; `data` is left out when None, so free-feature ids stay as before."""
        d = self.model_dump(mode="json", exclude=exclude)
        if d.get("data", 0) is None:
            del d["data"]
        return d


def _hash(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def load_config(path, overrides: list[str] | None = None) -> DUFMConfig:
    """Read a YAML config and apply `key=value` overrides (values parsed as YAML)."""
    import yaml

    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of config fields, got {type(data).__name__}")
    return DUFMConfig(**apply_overrides(data, overrides or []))


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """`a=1`, `optimizer.name=adam`: set (nested) fields from strings parsed as YAML scalars/lists."""
    import yaml

    data = json.loads(json.dumps(data))
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        target = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            target = target.setdefault(p, {})
        target[parts[-1]] = _number_or_value(yaml.safe_load(raw))
    return data


def _number_or_value(v):
    """YAML 1.1 reads `1e-3` as a string; a researcher means the number."""
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v
