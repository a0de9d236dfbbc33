"""Hessian spectra of a scalar loss over a parameter pytree: dense, Hessian-vector products, Lanczos.

Generic (any loss, any pytree); used by `deepcollapse.theory.landscape` for Garrod & Keating,
Theorems 4 and 6 (SPEC.md, "Landscape"): "compute the spectrum with autodiff (dense for small models,
Lanczos on HVPs beyond)".

Conventions. A pytree `params` is flattened with `jax.flatten_util.ravel_pytree` into one vector x of
length P (the "dim"); the Hessian is the P x P matrix of second derivatives of f(unravel(x)). All
computations are float64 when the parameters are (the package enables jax x64).
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

METHODS = ("auto", "dense", "lanczos")
DEFAULT_TOL = 1e-9          # n_negative counts eigenvalues below -tol * max|eig|
DENSE_MAX_DIM = 2000        # method="auto" uses the dense Hessian up to this many parameters
EXACT_TRACE_MAX_DIM = 4000  # lanczos: trace/Frobenius exact from P HVPs on basis vectors up to this dim


def flat_function(f: Callable, params, args: tuple = ()) -> tuple[Callable, jax.Array, Callable]:
    """(f_flat, x0, unravel): f_flat(x) = f(unravel(x), *args), x0 = the flattened params."""
    x0, unravel = ravel_pytree(jax.tree_util.tree_map(jnp.asarray, params))
    return (lambda x: f(unravel(x), *args)), x0, unravel


def _flat_grad(f: Callable, params, args: tuple) -> tuple[Callable, jax.Array]:
    x0, unravel = ravel_pytree(params)
    return (lambda x: ravel_pytree(jax.grad(f)(unravel(x), *args))[0]), x0


@partial(jax.jit, static_argnums=0)
def _hessian_matrix(f: Callable, params, args: tuple) -> jax.Array:
    g, x0 = _flat_grad(f, params, args)
    return jax.jacfwd(g)(x0)


@partial(jax.jit, static_argnums=0)
def _hvp_flat(f: Callable, params, v: jax.Array, args: tuple) -> jax.Array:
    g, x0 = _flat_grad(f, params, args)
    return jax.jvp(g, (x0,), (v.astype(x0.dtype),))[1]


def _as_jax(params):
    return jax.tree_util.tree_map(jnp.asarray, params)


def dense_hessian(f: Callable, params, args: tuple = ()) -> np.ndarray:
    """The P x P Hessian in params of f(params, *args) (forward-over-reverse autodiff), symmetrised, NumPy.

    Compiled once per (f, shapes): pass a module-level f and put varying data (labels, weight decay)
    in `args` to reuse the compilation across calls.
    """
    H = np.asarray(_hessian_matrix(f, _as_jax(params), tuple(args)))
    return 0.5 * (H + H.T)


def hvp(f: Callable, params, args: tuple = ()) -> Callable:
    """v (flat, length P) -> H v at params, for f(params, *args): jitted forward-over-reverse
    Hessian-vector product, jvp of grad f (Pearlmutter's trick); never forms H."""
    p, args = _as_jax(params), tuple(args)
    return lambda v: _hvp_flat(f, p, jnp.asarray(v), args)


class LanczosResult(NamedTuple):
    """Extreme Ritz values of a Lanczos run (estimates of the extreme eigenvalues)."""

    smallest: np.ndarray  # the k smallest Ritz values, ascending
    largest: np.ndarray   # the k largest Ritz values, descending
    ritz: np.ndarray      # all Ritz values (eigenvalues of the tridiagonal T), ascending
    n_iter: int           # Lanczos steps taken (size of T)
    restarts: int         # invariant subspaces found and restarted from (breakdowns)


def lanczos_eigs(hvp_fn: Callable, dim: int, k: int = 1, n_iter: int | None = None, seed: int = 0,
                 breakdown_tol: float = 1e-12) -> LanczosResult:
    """Lanczos with full reorthogonalisation for the extreme eigenvalues of a symmetric operator.

    The start vector is a standard normal vector from `np.random.default_rng(seed)` (deterministic).
    Each new vector is orthogonalised twice against all previous ones (classical Gram-Schmidt, twice
    is enough), so the Ritz values do not repeat spuriously. When beta_j < breakdown_tol * ||T||
    the Krylov space is invariant (H v is in the span; this happens early for Hessians with many
    repeated eigenvalues, e.g. symmetry directions), and the run restarts from a fresh random vector
    orthogonal to the basis, with a zero coupling in T. With n_iter = dim (the default when dim <= 200)
    every eigenvalue, with multiplicity, is found to round-off.

    hvp_fn: v -> H v on flat vectors of length dim. Returns a `LanczosResult`.
    """
    if not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim must be an int >= 1, got {dim!r}")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    if n_iter is None:
        n_iter = dim if dim <= 200 else min(dim, max(4 * k + 60, 100))
    if not isinstance(n_iter, (int, np.integer)) or not 1 <= n_iter <= dim:
        raise ValueError(f"n_iter must be an int in [1, dim={dim}], got {n_iter!r}")
    rng = np.random.default_rng(seed)
    Q = np.zeros((n_iter, dim))
    alpha = np.zeros(n_iter)
    beta = np.zeros(max(n_iter - 1, 0))
    q = rng.standard_normal(dim)
    q /= np.linalg.norm(q)
    restarts = 0
    scale = 0.0
    for j in range(n_iter):
        Q[j] = q
        w = np.array(hvp_fn(jnp.asarray(q)), np.float64)  # a writable copy
        alpha[j] = q @ w
        for _ in range(2):  # full reorthogonalisation against q_0..q_j
            w -= Q[: j + 1].T @ (Q[: j + 1] @ w)
        scale = max(scale, abs(alpha[j]), np.linalg.norm(w))
        if j == n_iter - 1:
            break
        b = np.linalg.norm(w)
        if b <= breakdown_tol * max(scale, np.finfo(float).tiny):
            restarts += 1
            beta[j] = 0.0
            q = rng.standard_normal(dim)
            for _ in range(2):
                q -= Q[: j + 1].T @ (Q[: j + 1] @ q)
            q /= np.linalg.norm(q)
        else:
            beta[j] = b
            q = w / b
    T = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    ritz = np.linalg.eigvalsh(T)
    kk = min(k, ritz.size)
    return LanczosResult(ritz[:kk].copy(), ritz[::-1][:kk].copy(), ritz, int(n_iter), restarts)


def _basis_hvps(hvp_fn: Callable, dim: int, dtype) -> tuple[float, float]:
    """(trace, Frobenius norm) exactly from the P products H e_i (columns of H)."""
    tr, fro2 = 0.0, 0.0
    eye_batch = 64
    hv_batch = jax.jit(jax.vmap(hvp_fn))
    for start in range(0, dim, eye_batch):
        idx = np.arange(start, min(dim, start + eye_batch))
        E = np.zeros((idx.size, dim))
        E[np.arange(idx.size), idx] = 1.0
        cols = np.asarray(hv_batch(jnp.asarray(E, dtype)), np.float64)
        tr += float(np.sum(cols[np.arange(idx.size), idx]))
        fro2 += float(np.sum(cols**2))
    return tr, float(np.sqrt(fro2))


def _hutchinson(hvp_fn: Callable, dim: int, samples: int, seed: int, dtype) -> tuple[float, float]:
    """Hutchinson estimates with Rademacher vectors v: tr H = E[v^T H v], ||H||_F^2 = E[||H v||^2]."""
    rng = np.random.default_rng(seed + 1)
    V = rng.choice([-1.0, 1.0], size=(samples, dim))
    HV = np.asarray(jax.jit(jax.vmap(hvp_fn))(jnp.asarray(V, dtype)), np.float64)
    return float(np.mean(np.sum(V * HV, axis=1))), float(np.sqrt(np.mean(np.sum(HV**2, axis=1))))


def spectrum_summary(f: Callable, params, method: str = "auto", tol: float = DEFAULT_TOL, k: int = 1,
                     n_iter: int | None = None, seed: int = 0, hutchinson_samples: int = 100,
                     args: tuple = (), exact_max_dim: int = EXACT_TRACE_MAX_DIM) -> dict:
    """Summary of the spectrum of the Hessian in params of f(params, *args).

    Returns {method, dim, tol, min_eig, max_eig, n_negative, trace, frobenius, spectral, nuclear,
    trace_method}:
      - min_eig, max_eig: extreme eigenvalues (dense: exact `eigvalsh`; lanczos: extreme Ritz values);
      - n_negative: eigenvalues below -tol * max|eig| (tol default 1e-9, i.e. far above float64
        round-off ~1e-15 and far below the curvature of a strict saddle); lanczos counts Ritz values, a
        lower bound on the count unless n_iter = dim;
      - trace = sum of eigenvalues; frobenius = sqrt(sum eig^2); spectral = max|eig|;
        nuclear = sum |eig| (the "trace norm"; dense only, None for lanczos);
      - trace_method: "exact" (dense, or lanczos with dim <= exact_max_dim: P HVPs on basis vectors)
        or "hutchinson-<samples>" (Rademacher estimate with `hutchinson_samples` vectors; also used for
        the Frobenius norm; standard error ~ sqrt(2 sum_{i != j} H_ij^2 / samples) for the trace).
    method: "dense", "lanczos", or "auto" (dense when dim <= DENSE_MAX_DIM).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    if not isinstance(hutchinson_samples, (int, np.integer)) or hutchinson_samples < 1:
        raise ValueError(f"hutchinson_samples must be an int >= 1, got {hutchinson_samples!r}")
    _, x0, _ = flat_function(f, params, args)
    dim = int(x0.size)
    if method == "auto":
        method = "dense" if dim <= DENSE_MAX_DIM else "lanczos"
    if method == "dense":
        eig = np.linalg.eigvalsh(dense_hessian(f, params, args))
        spectral = float(np.max(np.abs(eig)))
        return {"method": "dense", "dim": dim, "tol": tol,
                "min_eig": float(eig[0]), "max_eig": float(eig[-1]),
                "n_negative": int(np.sum(eig < -tol * spectral)),
                "trace": float(np.sum(eig)), "frobenius": float(np.sqrt(np.sum(eig**2))),
                "spectral": spectral, "nuclear": float(np.sum(np.abs(eig))), "trace_method": "exact"}
    hv = hvp(f, params, args)
    res = lanczos_eigs(hv, dim, k=k, n_iter=n_iter, seed=seed)
    spectral = float(max(abs(res.ritz[0]), abs(res.ritz[-1])))
    if dim <= exact_max_dim:
        trace, fro = _basis_hvps(hv, dim, x0.dtype)
        trace_method = "exact"
    else:
        trace, fro = _hutchinson(hv, dim, hutchinson_samples, seed, x0.dtype)
        trace_method = f"hutchinson-{hutchinson_samples}"
    return {"method": "lanczos", "dim": dim, "tol": tol,
            "min_eig": float(res.ritz[0]), "max_eig": float(res.ritz[-1]),
            "n_negative": int(np.sum(res.ritz < -tol * spectral)),
            "trace": trace, "frobenius": fro, "spectral": spectral, "nuclear": None,
            "trace_method": trace_method}
