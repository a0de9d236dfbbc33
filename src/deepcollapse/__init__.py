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

import jax

jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"
