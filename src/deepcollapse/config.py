"""Validated run configurations: the L-DUFM (`DUFMConfig`) and the real networks (`NetConfig`).

A config is data: it is hashed into the run id, written next to the results (`config.yaml`), and read
back from YAML (`parse_config`: `kind: net` selects a network config, anything else is a DUFM). Every
field that a paper leaves open has a default here and is an explicit option. Ranges are pydantic
`Field` constraints on the shared types below: every float is finite, every integer strict (YAML's
`true` is not a count), and an unknown field is an error naming it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, field_validator, model_validator

from .dufm import per_layer

# ---- shared field types ----------------------------------------------------------------------------
StrictInt = Annotated[int, Strict()]
Count = Annotated[int, Strict(), Field(ge=1)]
Seed = Annotated[int, Strict(), Field(ge=0)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
UnitInterval = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]  # open (0, 1)
Momentum = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]  # [0, 1)
PerLayer = Union[NonNegative, tuple[NonNegative, ...]]  # one value for every layer, or one per layer
Seeds = Union[Count, tuple[Seed, ...]]  # a count (seeds 0..count-1) or an explicit list

ACTIVATIONS = ("relu", "linear")
LOSSES = ("mse", "ce")

# Fields that may differ between lanes of one compiled DUFM program (same array shapes).
LANE_FIELDS = ("lam_H", "lam_W", "lr", "init_scale")


def _check_seeds(v):
    if not isinstance(v, int) and (len(v) == 0 or len(set(v)) != len(v)):
        raise ValueError(f"need a non-empty list of distinct seeds, got {list(v)}")
    return v


def _seed_list(seeds) -> tuple[int, ...]:
    return tuple(range(seeds)) if isinstance(seeds, int) else tuple(seeds)


def _lam_columns(lams: tuple[float, ...]) -> dict:
    """lam_W as table columns: `lam_W` (NaN if the layers differ) and, then, `lam_W1..lam_WL`."""
    if len(set(lams)) == 1:
        return {"lam_W": lams[0]}
    return {"lam_W": float("nan"), **{f"lam_W{l}": v for l, v in enumerate(lams, start=1)}}


def _hash(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


class OptimizerConfig(BaseModel):
    """An Optax optimizer by name with its keyword arguments; the learning rate comes from `lr`.

    The papers use plain full-batch gradient descent: `sgd` with no momentum (the default). The name
    must be an Optax optimizer (a function whose first parameter is `learning_rate`), and every keyword
    one it takes; both are checked here, before anything is trained or written.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = "sgd"
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known_optimizer(cls, v: str) -> str:
        if _optimizer_params(v) is None:
            raise ValueError(f"unknown optax optimizer {v!r}; use a name such as 'sgd', 'adam', 'adamw'")
        return v

    @model_validator(mode="after")
    def _known_kwargs(self) -> "OptimizerConfig":
        params = _optimizer_params(self.name)
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return self
        unknown = sorted(set(self.kwargs) - set(params) | ({"learning_rate"} & set(self.kwargs)))
        if unknown:
            allowed = [p for p in params if p != "learning_rate"]
            raise ValueError(f"kwargs: optax.{self.name} takes no keyword {', '.join(map(repr, unknown))} "
                             f"(the learning rate is `lr`); it takes {', '.join(allowed) or 'none'}")
        missing = [n for n, p in params.items() if n != "learning_rate" and p.default is p.empty
                   and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in self.kwargs]
        if missing:
            raise ValueError(f"kwargs: optax.{self.name} needs {', '.join(missing)}")
        return self


def _optimizer_params(name: str):
    """The parameters of optax.<name> if it is an optimizer factory (first parameter learning_rate)."""
    import optax

    if not name.isidentifier() or name.startswith("_"):
        return None
    f = getattr(optax, name, None)
    if not inspect.isfunction(f):
        return None
    try:
        params = inspect.signature(f).parameters
    except (TypeError, ValueError):
        return None
    return params if next(iter(params), None) == "learning_rate" else None


class Convergence(BaseModel):
    """When a run counts as converged, and whether it then stops.

    A lane has converged at the first logged step t >= w with |loss(t) - loss(t - w)| <= rtol |loss(t)|
    (and, for a network, train accuracy >= min_accuracy): the relative change of the loss over a window
    of w steps. `window`: w in steps (gradient steps; a network's SGD steps), None: a tenth of the run's
    steps, and at least one logged interval. stop: end the run once every lane has converged or diverged
    (the step count stays the cap). Every run's summary says whether and when each lane converged under
    its config's criterion, or under the default one (rtol 1e-4, a tenth of the steps, no stop).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    rtol: Positive = Field(1e-4, description="relative loss change over the window below which a lane converged")
    window: Count | None = Field(None, description="window in steps; None: a tenth of the steps")
    stop: bool = Field(True, description="stop once every lane converged (or diverged)")
    min_accuracy: UnitInterval | None = Field(None, description="networks: train accuracy needed as well")


class Start(BaseModel):
    """Start every lane at an explicit solution plus noise instead of a random initialisation.

    structure: a name of `theory.constructions.known_constructions(config)` ("dnc", "srg",
    "srg-balanced", "srg-relaxed", "pairs", "rank2", "relu-pairs", as the config allows); every entry
    of every factor then gets N(0, noise^2) added, drawn from the lane's seed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    structure: str
    noise: NonNegative = Field(0.0, description="std of the Gaussian noise added to every entry")


class GaussianData(BaseModel):
    """Fixed input data: K Gaussian clusters in R^dim (Zangrando et al. (2025), Fig. 1's synthetic data).

    X (dim x N, columns class by class) = `deepcollapse.data.gaussian.gaussian_clusters(K, dim, n,
    sigma, seed=seed, mean_scale=mean_scale)[0]`: centres of norm `mean_scale` in random directions,
    within-class std `sigma` (sigma = 0: every sample is its class centre). `seed` is the data's
    seed, independent of the run's initialisation seeds (every lane of a run sees the same X).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["gaussian"] = "gaussian"
    dim: Count = Field(..., description="input dimension d_1")
    sigma: NonNegative = Field(..., description="within-class standard deviation")
    mean_scale: Positive = Field(1.0, description="norm of every cluster centre")
    seed: Seed = Field(0, description="seed of the data (centres and noise)")


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

    K: Annotated[int, Strict(), Field(ge=2, description="number of classes")] = 10
    n: Count | None = Field(None, description="samples per class (balanced); or give class_sizes")
    class_sizes: tuple[Count, ...] | None = Field(None, description="samples of each class (imbalanced)")
    L: Count = Field(4, description="number of weight layers W_1..W_L (L = 1: the classical UFM)")
    width: Count | tuple[Count, ...] = Field(
        30, description="d_1..d_L: one int for all, or a list of L (with data: d_2..d_L, L-1 values)")
    activation: Literal["relu", "linear"] = "relu"
    loss: Literal["mse", "ce"] = "mse"
    lam_H: NonNegative = Field(0.004, description="weight decay on the free features H_1 (unused with data)")
    lam_W: PerLayer = Field(0.004, description="weight decay of W_1..W_L: one or L values")
    init_scale: NonNegative = Field(0.3, description="std of the Gaussian initialisation of every factor")
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    lr: Positive = Field(0.5, description="learning rate")
    steps: Count = Field(30000, description="full-batch gradient steps")
    seeds: Seeds = Field(10, description="a count (seeds 0..count-1) or an explicit list")
    dtype: Literal["float32", "float64"] = "float32"
    log_every: Count = Field(500, description="steps between logged metrics (one compiled chunk)")
    rank_rtol: UnitInterval = Field(1e-3, description="numerical rank: singular values above rtol * s_max")
    data: GaussianData | None = Field(
        None, description="fixed input data H_1 = X (an MLP on data); None: free features H_1")
    converge: Convergence | None = Field(None, description="stopping criterion; None: run every step")
    start: Start | None = Field(None, description="start at an explicit solution plus noise; None: random init")
    residual: bool | None = Field(
        None, description="layers 2..L-1 residual: H_{l+1} = H_l + act(W_l H_l) (equal widths d_2..d_L); None: no")

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        return _check_seeds(v)

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
        if not isinstance(self.lam_W, (int, float)) and len(self.lam_W) != self.L:
            raise ValueError(f"lam_W: need one value or L={self.L} values, got {len(self.lam_W)}")
        if self.log_every > self.steps:
            object.__setattr__(self, "log_every", self.steps)
        if self.steps % self.log_every:
            raise ValueError(f"log_every: must divide steps={self.steps}, got {self.log_every}")
        if self.converge is not None and self.converge.window is not None and self.converge.window % self.log_every:
            raise ValueError(f"converge.window: must be a multiple of log_every={self.log_every}, "
                             f"got {self.converge.window}")
        if self.converge is not None and self.converge.min_accuracy is not None:
            raise ValueError("converge.min_accuracy: only for network runs (a DUFM has no accuracy to reach)")
        if self.residual and (self.L < 3 or len(set(self.widths[1:])) != 1):
            raise ValueError(f"residual: needs L >= 3 and equal widths d_2..d_L (square W_2..W_(L-1)), got L={self.L}, "
                             f"widths {list(self.widths)}")
        if self.start is not None:
            from .theory.constructions import known_constructions

            known = known_constructions(self)
            if self.start.structure not in known:
                raise ValueError(f"start.structure: {self.start.structure!r} has no construction for this config "
                                 f"(K={self.K}, L={self.L}, {self.activation}/{self.loss}, widths "
                                 f"{list(self.widths)}); it has: {', '.join(known) or 'none'}")
        return self

    # ---- derived views -------------------------------------------------------------------------
    kind: ClassVar[str] = "dufm"

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
        return tuple(per_layer(self.lam_W, self.L).tolist())

    @property
    def seed_list(self) -> tuple[int, ...]:
        return _seed_list(self.seeds)

    def lane_columns(self) -> dict:
        """The hyper-parameters that may differ between lanes, as history / summary columns."""
        return {"lam_H": self.lam_H, **_lam_columns(self.lams_W), "lr": self.lr, "init_scale": self.init_scale}

    def resources(self) -> dict:
        """What a run asks of a Ray node: one CPU (the engine's programs are small)."""
        return {"num_cpus": 1, "num_gpus": 0}

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
        for k in ("data", "converge", "start", "residual"):  # added later: left out when unset, so older ids stay
            if d.get(k, 0) is None:
                del d[k]
        return d

    def to_dict(self) -> dict:
        """The fields as written to config.yaml (read back by `parse_config`)."""
        return self.model_dump(mode="json")


NET_DATASETS = ("mnist", "fashion-mnist", "cifar10", "cifar10-python", "cifar10-jpeg", "synthetic")
_NUM_CLASSES = {"mnist": 10, "fashion-mnist": 10, "cifar10": 10, "cifar10-python": 10, "cifar10-jpeg": 10}
DEFAULT_LAM = 5e-4
#: Fields of a NetConfig that say where a run goes, not what it computes: not part of the run id.
NET_PLACEMENT_FIELDS = ("num_cpus", "num_gpus", "data_root")


class NetConfig(BaseModel):
    """One ResNet-20 + MLP-head training run (one or more seeds) (SPEC.md, "Real networks"; Súkeník et
    al. 2024, Sec. 5 and Fig. 2; Garrod & Keating, Sec. 5).

    Data: `dataset` split `split` from `data_root` (see `deepcollapse.data.load`), `n_per_class`
    samples per class drawn with `data_seed` (None: all), standardised per channel if `standardize`.
    "synthetic": K = `synthetic_K` Gaussian class templates of shape `synthetic_shape` (H, W, C) plus
    N(0, synthetic_noise^2) pixel noise (`n_per_class` required) -- for tests and smoke runs.

    Regularisation modes:
    - "dufm" (DUFM-like): loss = fit + (N/B) lam_H/2 ||H_1,batch||_F^2 + sum_l lam_l/2 ||W_l||_F^2
      + backbone_wd/2 ||theta_backbone||^2 (default backbone_wd = 0). H_1,batch (d_1 x B) are the
      backbone's features of the batch; the factor N/B makes the penalty an unbiased estimate of the
      DUFM's full-data term lam_H/2 ||H_1||_F^2 (with a full batch it is exactly that term).
    - "standard": loss = fit + weight_decay/2 ||all parameters||^2 (backbone convolutions, BatchNorm
      scales and biases, and the head), i.e. SGD's coupled weight decay; no feature penalty.
    `lam_H`, `lam_W`, `backbone_wd` belong to "dufm" mode and `weight_decay` to "standard" mode; leaving
    them None gives the mode's default (dufm: 5e-4, 5e-4, 0; standard: 5e-4), and setting one that the
    chosen mode does not use is an error, so a config never carries a value that had no effect.

    `num_cpus`, `num_gpus` (what a Ray task of this run asks for) and `data_root` (where the files
    are) place a run; they are not part of its run id.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["net"] = "net"

    # data
    dataset: Literal["mnist", "fashion-mnist", "cifar10", "cifar10-python", "cifar10-jpeg", "synthetic"] = "cifar10"
    data_root: str | None = Field(None, description="data root; None: $DEEPCOLLAPSE_DATA or the default")
    split: Literal["train", "test"] = "train"
    n_per_class: Count | None = Field(None, description="samples per class (balanced subset); None: all")
    data_seed: Seed = Field(0, description="seed of the subset choice (the same subset for every run seed)")
    standardize: bool = True
    synthetic_K: Annotated[int, Strict(), Field(ge=2)] = 10
    synthetic_shape: tuple[Count, Count, Count] = (8, 8, 1)
    synthetic_noise: NonNegative = 0.5

    # backbone
    backbone: Literal["resnet20", "mlp"] = Field("resnet20", description="ResNet-20, or a ReLU MLP on the pixels")
    mlp_widths: tuple[Count, ...] = Field((256,), description="mlp backbone: hidden widths, the last is d_1")
    mlp_init_scale: Positive | None = Field(
        None, description="mlp backbone: weights N(0, s^2/fan_in) (truncated); None: s = 1 (LeCun normal)")
    channels: tuple[Count, Count, Count] = Field((16, 32, 64), description="ResNet-20 stage widths c_1, c_2, c_3")
    shortcut: Literal["A", "B"] = "A"
    bn_momentum: Momentum = 0.9

    # head
    L: Count = Field(3, description="number of head layers W_1..W_L")
    width: Count = Field(64, description="hidden width d of the head")
    activation: Literal["relu", "linear"] = "relu"
    loss: Literal["mse", "ce"] = "mse"
    head_init_scale: Positive | None = Field(None, description="std of head entries; None: 1/sqrt(fan_in)")

    # regularisation
    reg: Literal["dufm", "standard"] = "dufm"
    lam_H: NonNegative | None = Field(None, description="dufm: weight decay on the features H_1")
    lam_W: PerLayer | None = Field(None, description="dufm: lam_1..lam_L, one or L values")
    backbone_wd: NonNegative | None = Field(None, description="dufm: weight decay of the backbone (default 0)")
    weight_decay: NonNegative | None = Field(None, description="standard: weight decay of every parameter")

    # optimisation
    lr: Positive = 0.05
    backbone_lr: Positive | None = Field(None, description="learning rate of the backbone's parameters; None: lr")
    momentum: Momentum = 0.0
    batch_size: Count | None = Field(128, description="samples per step; None: the full subset")
    epochs: Count = 10
    eval_every: Count = Field(1, description="epochs between metric passes and checkpoints")
    eval_batch_size: Count = Field(500, description="batch of the metric pass (memory only)")
    augment: bool = Field(False, description="random crop (zero padding crop_pad) + horizontal flip")
    crop_pad: Annotated[int, Strict(), Field(ge=0)] = 4
    seeds: Seeds = Field(1, description="a count (seeds 0..count-1) or an explicit list")
    dtype: Literal["float32"] = "float32"

    # metrics
    rank_rtol: UnitInterval = Field(1e-3, description="numerical rank: singular values above rtol * s_max")
    logit_sv_atol: Positive = Field(1e-6, description="final count of class-mean-logit singular values above this")
    converge: Convergence | None = Field(None, description="stopping criterion; None: train every epoch")

    # placement (not part of the run id)
    num_cpus: Count = Field(1, description="CPUs a Ray task of this run asks for")
    num_gpus: NonNegative = Field(0, description="GPUs a Ray task of this run asks for (0: none)")

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v):
        return _check_seeds(v)

    @field_validator("synthetic_shape")
    @classmethod
    def _shape(cls, v):
        if min(v[:2]) < 4:
            raise ValueError(f"must be (H, W, C) with H, W >= 4 and C >= 1, got {v}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "NetConfig":
        if self.reg == "dufm" and self.weight_decay is not None:
            raise ValueError("weight_decay: only used with reg='standard'; in 'dufm' mode set lam_H, lam_W "
                             "and backbone_wd instead")
        if self.reg == "standard":
            given = [k for k in ("lam_H", "lam_W", "backbone_wd") if getattr(self, k) is not None]
            if given:
                raise ValueError(f"{', '.join(given)}: only used with reg='dufm'; in 'standard' mode set "
                                 "weight_decay (applied to every parameter)")
        if self.lam_W is not None and not isinstance(self.lam_W, (int, float)) and len(self.lam_W) not in (1, self.L):
            raise ValueError(f"lam_W: need one value or L={self.L} values, got {len(self.lam_W)}")
        if self.backbone != "mlp" and self.mlp_init_scale is not None:
            raise ValueError("mlp_init_scale: only used with backbone='mlp'")
        if self.dataset == "synthetic" and self.n_per_class is None:
            raise ValueError("n_per_class: the synthetic dataset needs a number of samples per class")
        if self.shortcut == "A" and not (self.channels[0] <= self.channels[1] <= self.channels[2]):
            raise ValueError(f"channels: option-A shortcuts need non-decreasing widths, got {self.channels}")
        if self.batch_size is not None and self.n_per_class is not None and self.batch_size > self.N:
            raise ValueError(f"batch_size: at most the subset size N={self.N} (K={self.K} x n_per_class="
                             f"{self.n_per_class}), got {self.batch_size}; use None for full batch")
        return self

    # ---- derived views --------------------------------------------------------------------------
    @property
    def K(self) -> int:
        """Number of classes, from the dataset."""
        return self.synthetic_K if self.dataset == "synthetic" else _NUM_CLASSES[self.dataset]

    @property
    def N(self) -> int | None:
        """Training-set size when n_per_class is given (else known only after loading)."""
        return None if self.n_per_class is None else self.K * self.n_per_class

    @property
    def lam_H_value(self) -> float:
        return 0.0 if self.reg == "standard" else (DEFAULT_LAM if self.lam_H is None else float(self.lam_H))

    @property
    def lams_W(self) -> tuple[float, ...]:
        """lam_1..lam_L (0 in standard mode, where weight_decay covers the head)."""
        if self.reg == "standard":
            return (0.0,) * self.L
        v = DEFAULT_LAM if self.lam_W is None else self.lam_W
        if not isinstance(v, (int, float)) and len(v) == 1:
            v = v[0]
        return tuple(per_layer(v, self.L).tolist())

    @property
    def backbone_wd_value(self) -> float:
        return 0.0 if self.reg == "standard" or self.backbone_wd is None else float(self.backbone_wd)

    @property
    def weight_decay_value(self) -> float:
        if self.reg != "standard":
            return 0.0
        return DEFAULT_LAM if self.weight_decay is None else float(self.weight_decay)

    @property
    def seed_list(self) -> tuple[int, ...]:
        return _seed_list(self.seeds)

    def lane_columns(self) -> dict:
        """The regularisation and learning rate, as history / summary columns."""
        return {"lam_H": self.lam_H_value, **_lam_columns(self.lams_W), "weight_decay": self.weight_decay_value,
                "lr": self.lr}

    def resources(self) -> dict:
        """What a Ray task of this run asks for: `num_cpus`, `num_gpus`."""
        return {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}

    def shape_key(self) -> str:
        """Network runs never share a program: the key is the run id."""
        return self.run_id()

    def run_id(self) -> str:
        """Content hash of every field that changes the numbers (placement fields left out; the
        backbone fields, added later, left out for a ResNet so that older ids stay)."""
        d = self.model_dump(mode="json", exclude=set(NET_PLACEMENT_FIELDS))
        if self.backbone == "resnet20":
            del d["backbone"], d["mlp_widths"]
        for k in ("mlp_init_scale", "backbone_lr"):  # added later: left out when unset, so older ids stay
            if d.get(k, 0) is None:
                del d[k]
        return _hash(d)

    @property
    def backbone_name(self) -> str:
        """The backbone as figures name it: "ResNet-20" (with its stage widths when reduced) or "MLP(256)"."""
        if self.backbone == "mlp":
            return f"MLP({'-'.join(map(str, self.mlp_widths))}) on pixels"
        return "ResNet-20" + ("" if self.channels == (16, 32, 64) else f" {'-'.join(map(str, self.channels))}")

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")


RunConfig = Union[DUFMConfig, NetConfig]
KINDS = {"dufm": DUFMConfig, "net": NetConfig}


def is_run_config(c) -> bool:
    return isinstance(c, (DUFMConfig, NetConfig))


def parse_config(data: dict) -> RunConfig:
    """A config from its fields: `kind: net` -> NetConfig, no kind (or `kind: dufm`) -> DUFMConfig."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a mapping of config fields, got {type(data).__name__}")
    kind = data.get("kind", "dufm")
    if kind not in KINDS:
        raise ValueError(f"kind: must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "dufm":
        data = {k: v for k, v in data.items() if k != "kind"}
    return KINDS[kind](**data)


def config_error_line(e: BaseException) -> str:
    """One line for a config error: `field: what is wrong; other.field: ...` (pydantic or ValueError)."""
    if isinstance(e, ValidationError):
        parts = []
        for err in e.errors():
            field = ".".join(str(x) for x in err["loc"] if not str(x).startswith("function-")) or "config"
            msg = err["msg"].removeprefix("Value error, ")
            parts.append(f"{field}: {msg}")
        return "; ".join(parts)
    return " ".join(str(e).split())


def load_config(path, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config and apply `key=value` overrides (values parsed as YAML)."""
    import yaml

    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of config fields, got {type(data).__name__}")
    return parse_config(apply_overrides(data, overrides or []))


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
