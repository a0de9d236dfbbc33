"""Validated configuration of a real-network run: ResNet-20 backbone + L-layer MLP head (SPEC.md,
"Real networks"; Súkeník et al. 2024, Sec. 5 and Fig. 2; Garrod & Keating, Sec. 5).

Regularisation modes:

- "dufm" (DUFM-like): loss = fit + (N/B) lam_H/2 ||H_1,batch||_F^2 + sum_l lam_l/2 ||W_l||_F^2
  + backbone_wd/2 ||theta_backbone||^2 (default backbone_wd = 0). H_1,batch (d_1 x B) are the
  backbone's features of the batch. The factor N/B makes the penalty an unbiased estimate of the
  DUFM's full-data term lam_H/2 ||H_1||_F^2 = lam_H/2 sum_{i=1}^N ||h_i||^2 (a uniformly drawn batch
  of B of the N samples has E[(N/B) sum_{i in batch} ||h_i||^2] = sum_i ||h_i||^2); with a full batch
  (B = N) it is exactly the DUFM term, while the fit is the batch mean, as in the DUFM.
- "standard": loss = fit + weight_decay/2 * ||all parameters||^2 (backbone convolutions, BatchNorm
  scales and biases, and the head), i.e. SGD's coupled weight decay; no feature penalty.

`lam_H`, `lam_W`, `backbone_wd` belong to "dufm" mode and `weight_decay` to "standard" mode; leaving
them None gives the mode's default (dufm: 5e-4, 5e-4, 0; standard: 5e-4), and setting one that the
chosen mode does not use is an error, so a config never carries a value that had no effect.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DATASETS = ("mnist", "fashion-mnist", "cifar10", "cifar10-python", "cifar10-jpeg", "synthetic")
_NUM_CLASSES = {"mnist": 10, "fashion-mnist": 10, "cifar10": 10, "cifar10-python": 10, "cifar10-jpeg": 10}
DEFAULT_LAM = 5e-4


class NetConfig(BaseModel):
    """One ResNet-20 + MLP-head training run (one or more seeds).

    Data: `dataset` split `split` from `data_root` (see `deepcollapse.data.load`), `n_per_class`
    samples per class drawn with `data_seed` (None: all), standardised per channel if `standardize`.
    "synthetic": K = `synthetic_K` Gaussian class templates of shape `synthetic_shape` (H, W, C) plus
    N(0, synthetic_noise^2) pixel noise (`n_per_class` required) -- for tests and smoke runs.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # data
    dataset: Literal["mnist", "fashion-mnist", "cifar10", "cifar10-python", "cifar10-jpeg", "synthetic"] = "cifar10"
    data_root: str | None = Field(None, description="data root; None: $DEEPCOLLAPSE_DATA or the default")
    split: Literal["train", "test"] = "train"
    n_per_class: int | None = Field(None, description="samples per class (balanced subset); None: all")
    data_seed: int = Field(0, description="seed of the subset choice (the same subset for every run seed)")
    standardize: bool = True
    synthetic_K: int = 10
    synthetic_shape: tuple[int, int, int] = (8, 8, 1)
    synthetic_noise: float = 0.5

    # backbone
    channels: tuple[int, int, int] = Field((16, 32, 64), description="ResNet-20 stage widths c_1, c_2, c_3")
    shortcut: Literal["A", "B"] = "A"
    bn_momentum: float = 0.9

    # head
    L: int = Field(3, description="number of head layers W_1..W_L")
    width: int = Field(64, description="hidden width d of the head")
    activation: Literal["relu", "linear"] = "relu"
    loss: Literal["mse", "ce"] = "mse"
    head_init_scale: float | None = Field(None, description="std of head entries; None: 1/sqrt(fan_in)")

    # regularisation
    reg: Literal["dufm", "standard"] = "dufm"
    lam_H: float | None = Field(None, description="dufm: weight decay on the features H_1")
    lam_W: float | tuple[float, ...] | None = Field(None, description="dufm: lam_1..lam_L, one or L values")
    backbone_wd: float | None = Field(None, description="dufm: weight decay of the backbone (default 0)")
    weight_decay: float | None = Field(None, description="standard: weight decay of every parameter")

    # optimisation
    lr: float = 0.05
    momentum: float = 0.0
    batch_size: int | None = Field(128, description="samples per step; None: the full subset")
    epochs: int = 10
    eval_every: int = Field(1, description="epochs between metric passes and checkpoints")
    eval_batch_size: int = Field(500, description="batch of the metric pass (memory only)")
    augment: bool = Field(False, description="random crop (zero padding crop_pad) + horizontal flip")
    crop_pad: int = 4
    seeds: int | tuple[int, ...] = Field(1, description="a count (seeds 0..count-1) or an explicit list")
    dtype: Literal["float32"] = "float32"

    # metrics
    rank_rtol: float = Field(1e-3, description="numerical rank: singular values above rtol * s_max")
    logit_sv_atol: float = Field(1e-6, description="final count of class-mean-logit singular values above this")

    # ---- validation -----------------------------------------------------------------------------
    @field_validator("n_per_class")
    @classmethod
    def _npc(cls, v):
        if v is not None and v < 1:
            raise ValueError(f"must be >= 1 sample per class or None (all), got {v}")
        return v

    @field_validator("synthetic_K")
    @classmethod
    def _k(cls, v):
        if v < 2:
            raise ValueError(f"must be >= 2 classes, got {v}")
        return v

    @field_validator("synthetic_shape")
    @classmethod
    def _shape(cls, v):
        if min(v) < 1 or min(v[:2]) < 4:
            raise ValueError(f"must be (H, W, C) with H, W >= 4 and C >= 1, got {v}")
        return v

    @field_validator("channels")
    @classmethod
    def _channels(cls, v):
        if min(v) < 1:
            raise ValueError(f"every stage needs >= 1 channel, got {v}")
        return v

    @field_validator("L", "width", "epochs", "eval_every", "eval_batch_size")
    @classmethod
    def _positive(cls, v):
        if v < 1:
            raise ValueError(f"must be >= 1, got {v}")
        return v

    @field_validator("batch_size")
    @classmethod
    def _batch(cls, v):
        if v is not None and v < 1:
            raise ValueError(f"must be >= 1 or None (full batch), got {v}")
        return v

    @field_validator("lr")
    @classmethod
    def _lr(cls, v):
        if not v > 0:
            raise ValueError(f"learning rate must be > 0, got {v}")
        return v

    @field_validator("momentum", "bn_momentum")
    @classmethod
    def _unit(cls, v):
        if not 0 <= v < 1:
            raise ValueError(f"must be in [0, 1), got {v}")
        return v

    @field_validator("lam_H", "backbone_wd", "weight_decay", "synthetic_noise", "crop_pad")
    @classmethod
    def _nonneg(cls, v):
        if v is not None and not v >= 0:
            raise ValueError(f"must be >= 0, got {v}")
        return v

    @field_validator("head_init_scale")
    @classmethod
    def _init(cls, v):
        if v is not None and not v > 0:
            raise ValueError(f"must be > 0 or None (1/sqrt(fan_in)), got {v}")
        return v

    @field_validator("rank_rtol")
    @classmethod
    def _rtol(cls, v):
        if not 0 < v < 1:
            raise ValueError(f"must be in (0, 1), got {v}")
        return v

    @field_validator("logit_sv_atol")
    @classmethod
    def _atol(cls, v):
        if not v > 0:
            raise ValueError(f"must be > 0, got {v}")
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
    def _consistent(self) -> "NetConfig":
        if self.reg == "dufm" and self.weight_decay is not None:
            raise ValueError("weight_decay: only used with reg='standard'; in 'dufm' mode set lam_H, lam_W "
                             "and backbone_wd instead")
        if self.reg == "standard":
            given = [k for k in ("lam_H", "lam_W", "backbone_wd") if getattr(self, k) is not None]
            if given:
                raise ValueError(f"{', '.join(given)}: only used with reg='dufm'; in 'standard' mode set "
                                 "weight_decay (applied to every parameter)")
        if self.lam_W is not None:
            lams = (self.lam_W,) if isinstance(self.lam_W, (int, float)) else tuple(self.lam_W)
            if len(lams) not in (1, self.L):
                raise ValueError(f"lam_W: need one value or L={self.L} values, got {len(lams)}")
            if any(not x >= 0 for x in lams):
                raise ValueError(f"lam_W: every weight decay must be >= 0, got {list(lams)}")
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
        if isinstance(v, (int, float)):
            return (float(v),) * self.L
        return tuple(float(x) for x in v) * (self.L if len(v) == 1 else 1)

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
        return tuple(range(self.seeds)) if isinstance(self.seeds, int) else tuple(self.seeds)

    def run_id(self) -> str:
        """Content hash of the whole config."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:12]
