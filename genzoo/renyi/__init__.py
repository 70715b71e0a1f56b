"""Matrix-based Rényi α-entropies and α-divergences (MBRCE), differentiable, in PyTorch.

This package imports only ``torch`` and the standard library, and nothing else from genzoo (its modules import
each other relatively), so the folder can be copied out of genzoo and used on its own.  Every function takes
point clouds ``x`` of shape ``(n, d)`` or batched ``(..., n, d)``, is differentiable with respect to the points,
computes in float64 internally (``precision``: checks.py) and casts the result back to the input's dtype.
Logarithms are natural.

Definitions (see docs/mbrce.md; Sanchez Giraldo, Rao & Príncipe, arXiv 1211.2459; Sledge & Príncipe,
arXiv 2109.11737)
-------------------------------------------------------------------------------------------------------
* kernels: ``"gaussian"`` exp(-‖x-y‖² / (2σ²)) and ``"laplacian"`` exp(-‖x-y‖ / σ) (the kernel the
  reference notebook uses, which it calls Gaussian).  ``sigma="median"``: σ = median of the pairwise
  Euclidean distances of the (pooled) sample, detached (no gradient flows through σ).
* normalised Gram matrix A_ij = K_ij / (n √(K_ii K_jj)), tr A = 1.
* entropy S_α(A) = 1/(1-α) log Σ λ_i^α;  joint entropy S_α(A∘B / tr(A∘B));  I = S(A) + S(B) - S(A,B).
* bipartite divergence C_α(κ1‖κ2) = 1/(α-1) log tr(κ1^α κ2^(1-α)) - 1/(α-1) log tr κ1 (rows of x and y
  are paired, so it depends on their order: docs/mbrce.md).
* mirrored (sandwiched) divergence C'_α = 1/(α-1) log tr((κ2^β κ1 κ2^β)^α) - 1/(α-1) log tr κ1,
  β = (1-α)/(2α); the matrix is raised to α *before* the trace (pitfall 2).
* pooled divergence (docs/mbrce.md): with Z = [x; y], K its unit-diagonal Gram matrix and
  D_X = diag(1/n_x on the x rows), D_Y likewise,
  D_α = 1/(α-1) log tr((K^½ D_X K^½)^α (K^½ D_Y K^½)^(1-α)) - 1/(α-1) log tr(K^½ D_X K^½).
  It is invariant to the order of the rows of x and of y, and n_x ≠ n_y is allowed.
* cross-entropy = S_α(x) + divergence (pitfall 3: the "C_α" of the notebook is a divergence; it is 0 for a
  sample against itself).  No ``abs()`` around the logs (pitfall 1).

Modules (the design notes are in their docstrings)
--------------------------------------------------
* checks: argument validation, the compute dtype.
* distances: squared distances, their round-off level, the median bandwidth.
* kernels: Gram matrices, the unit-diagonal blocks of a pooled sample, the fused Gaussian blocks.
* spectral: traces of regularised matrix powers with stable gradients (autograd Functions, Loewner matrices).
* estimators: entropies, mutual information, the bipartite, mirrored and pooled divergences, ``divergence``,
  ``cross_entropy``.
* large: the Nyström and stochastic Lanczos estimators of the pooled divergence of large samples.
* module: ``RenyiDivergence``, the divergence as an ``nn.Module`` loss.
"""

from .checks import DEFAULT_EPS, KERNELS, MEASURES, PRECISIONS, Sigma
from .distances import median_bandwidth
from .estimators import (
    bipartite_divergence,
    cross_entropy,
    divergence,
    joint_entropy,
    mirrored_divergence,
    mutual_information,
    pooled_divergence,
    renyi_entropy,
)
from .kernels import gram_matrix, normalized_gram
from .large import lanczos_divergence, nystrom_divergence
from .module import RenyiDivergence

__all__ = [
    "DEFAULT_EPS",
    "KERNELS",
    "MEASURES",
    "PRECISIONS",
    "Sigma",
    "gram_matrix",
    "median_bandwidth",
    "normalized_gram",
    "renyi_entropy",
    "joint_entropy",
    "mutual_information",
    "bipartite_divergence",
    "mirrored_divergence",
    "pooled_divergence",
    "nystrom_divergence",
    "lanczos_divergence",
    "divergence",
    "cross_entropy",
    "RenyiDivergence",
]
