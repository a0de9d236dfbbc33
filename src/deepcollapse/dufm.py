"""The deep unconstrained features model (L-DUFM): parameters, forward pass and loss.

SPEC.md, "The deep unconstrained features model"; Súkeník et al. (2024), Sec. 3 (MSE, ReLU);
Garrod & Keating, Eq. (1) (cross-entropy, deep linear and ReLU UFM).

    Z_1 = W_1 H_1,  H_{l+1} = act(Z_l) (l = 1..L-1),  Z = Z_L = W_L H_L
    loss = fit(Z, Y) + lam_H/2 ||H_1||_F^2 + sum_l lam_l/2 ||W_l||_F^2

Parameters are a pytree {"H1": (d_1, N), "W": (W_1, ..., W_L)}; features are columns, ordered
class by class. An MLP trained on fixed data is the same model with H_1 given and not optimised:
pass `H1=` to `forward`/`loss_terms` and leave "H1" out of the parameters.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np


class Hyper(NamedTuple):
    """The per-lane hyper-parameters of the loss (arrays, so they can be vmapped)."""

    lam_H: jax.Array  # scalar
    lam_W: jax.Array  # (L,)


def per_layer(value, L: int, name: str = "lam_W") -> np.ndarray:
    """lam_1..lam_L (float64, shape (L,)) from one value for every layer or a sequence of L values.

    The one reading of "a scalar or per-layer" weight decay (configs, theory, reference losses).
    """
    if isinstance(L, bool) or not isinstance(L, (int, np.integer)) or L < 1:
        raise ValueError(f"L must be an int >= 1, got {L!r}")
    lam = np.asarray(value, np.float64)
    if lam.ndim == 0:
        lam = np.full(L, float(lam))
    if lam.shape != (L,):
        raise ValueError(f"{name} must be a scalar or a sequence of L={L} values, got shape {lam.shape}")
    return lam


def labels(sizes: Sequence[int]) -> np.ndarray:
    """Class index of each column, class by class: [0]*n_1 + [1]*n_2 + ..."""
    return np.repeat(np.arange(len(sizes)), sizes)


def one_hot(sizes: Sequence[int], dtype=np.float64) -> np.ndarray:
    """Y (K x N), one-hot columns ordered class by class (balanced: I_K kron 1_n^T)."""
    y = labels(sizes)
    return np.eye(len(sizes), dtype=dtype)[:, y]


def init_params(key: jax.Array, widths: Sequence[int], K: int, N: int, scale, dtype=jnp.float32,
                free_features: bool = True) -> dict:
    """Gaussian initialisation, every entry N(0, scale^2): H_1 (d_1 x N) and W_l (d_{l+1} x d_l)."""
    dims = list(widths) + [K]
    keys = jax.random.split(key, len(widths) + 1)
    W = tuple(scale * jax.random.normal(keys[l + 1], (dims[l + 1], dims[l]), dtype) for l in range(len(widths)))
    params = {"W": W}
    if free_features:
        params["H1"] = scale * jax.random.normal(keys[0], (dims[0], N), dtype)
    return params


def act_fn(activation: str):
    if activation == "relu":
        return jax.nn.relu
    if activation == "linear":
        return lambda x: x
    raise ValueError(f"activation must be one of 'relu', 'linear', got {activation!r}")


def forward(params: dict, activation: str = "relu", H1=None, residual: bool = False) -> tuple[list, list]:
    """All features of the forward pass.

    Returns (Hs, Zs): Hs = [H_1, ..., H_L] (inputs of W_1..W_L; H_1 is not passed through act),
    Zs = [Z_1, ..., Z_L] (pre-activations; Z_L is the output Z).
    residual: the intermediate layers l = 2..L-1 are residual blocks, H_{l+1} = H_l + act(W_l H_l)
    (Zangrando et al., the residual networks of their Fig. 4; W_l square); H_2 = act(W_1 H_1) and
    Z = W_L H_L as without.
    """
    act = act_fn(activation)
    H = params["H1"] if H1 is None else H1
    Hs, Zs = [], []
    W = params["W"]
    for l, Wl in enumerate(W):
        Hs.append(H)
        Z = Wl @ H
        Zs.append(Z)
        if l < len(W) - 1:
            H = H + act(Z) if residual and l > 0 else act(Z)
    return Hs, Zs


def fit_mse(Z, Y):
    """MSE fit 1/(2N) ||Z - Y||_F^2 (Súkeník et al., Eq. 1)."""
    return 0.5 * jnp.sum((Z - Y) ** 2) / Z.shape[1]


def fit_ce(Z, Y):
    """Cross-entropy fit 1/N sum_i -log softmax(z_i)[y_i] (Garrod & Keating, Eq. 1)."""
    logp = jax.nn.log_softmax(Z, axis=0)
    return -jnp.sum(Y * logp) / Z.shape[1]


FITS = {"mse": fit_mse, "ce": fit_ce}


def reg_terms(params: dict, hyper: Hyper) -> jax.Array:
    """Per-factor regularisation [lam_H/2 ||H_1||^2, lam_1/2 ||W_1||^2, ..., lam_L/2 ||W_L||^2].

    Without free features the first entry is 0.
    """
    h = 0.5 * hyper.lam_H * jnp.sum(params["H1"] ** 2) if "H1" in params else jnp.zeros((), hyper.lam_W.dtype)
    w = [0.5 * hyper.lam_W[l] * jnp.sum(Wl**2) for l, Wl in enumerate(params["W"])]
    return jnp.stack([h, *w])


def loss_terms(params: dict, Y, hyper: Hyper, activation: str = "relu", loss: str = "mse", H1=None,
               residual: bool = False):
    """(total, fit, per-factor reg) of the L-DUFM loss (SPEC.md); residual: see `forward`."""
    _, Zs = forward(params, activation, H1, residual)
    fit = FITS[loss](Zs[-1], Y)
    reg = reg_terms(params, hyper)
    return fit + jnp.sum(reg), fit, reg


def total_loss(params: dict, Y, hyper: Hyper, activation: str = "relu", loss: str = "mse", H1=None):
    """The scalar L-DUFM loss; the function that gradient descent and the landscape tools use."""
    return loss_terms(params, Y, hyper, activation, loss, H1)[0]


def hyper(lam_H, lam_W, L: int | None = None, dtype=jnp.float64) -> Hyper:
    """Build `Hyper` from a scalar lam_H and a scalar or per-layer lam_W."""
    if L is None and np.ndim(lam_W) == 0:
        raise ValueError("L is needed to broadcast a scalar lam_W")
    if isinstance(lam_W, jax.Array):  # possibly traced: broadcast in jax
        lam = jnp.broadcast_to(lam_W.astype(dtype), (L or lam_W.shape[0],))
    else:
        lam = jnp.asarray(per_layer(lam_W, L or len(lam_W)), dtype)
    return Hyper(jnp.asarray(lam_H, dtype), lam)
