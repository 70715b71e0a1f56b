"""The `arcsine` sampler: LBAE's fitted distribution over binary codes (the LBAE paper's `cov`), as a component.

For b = sign(a) with a ~ N(0, H), E[b_i b_j] = 2/pi arcsin(H_ij) (the arcsine law); so to reproduce the codes'
second moments G (augmented with their means through an extra always-on coordinate) draw a ~ N(0, H) with
H = sin(pi/2 G), made positive definite by Higham's nearest-SPD fix where needed. LBAE's own prior (fitted at every
export) and this registered sampler run the same functions below. It has no closed-form density (a code's
probability is a Gaussian orthant probability), so its fit record holds the held-out codes' moment error instead
of a log-likelihood.
"""

from __future__ import annotations

import math

import torch

from genzoo.core.errors import GenzooError
from genzoo.core.registry import SAMPLERS
from genzoo.samplers.base import CodeSampler, standard_normal


def nearest_positive_definite(a: torch.Tensor, max_tries: int = 100) -> torch.Tensor:
    """Higham (1988) nearest symmetric positive semidefinite matrix, nudged until Cholesky succeeds (float64).

    The reference's port of John D'Errico's nearestSPD: symmetrise, average with the polar factor's SPD part,
    then add multiples of the identity scaled by the most negative eigenvalue until the matrix factorises.
    """
    b = (a + a.T) / 2
    _, s, vh = torch.linalg.svd(b)
    h = vh.T @ torch.diag(s) @ vh
    a3 = (b + h) / 2
    a3 = (a3 + a3.T) / 2
    eye = torch.eye(a.shape[0], dtype=a.dtype, device=a.device)
    spacing = float(torch.finfo(a.dtype).eps * torch.linalg.matrix_norm(a, ord=2))
    for k in range(1, max_tries + 1):
        _, info = torch.linalg.cholesky_ex(a3)
        if int(info) == 0:
            return a3
        min_eig = float(torch.linalg.eigvalsh(a3).min())
        a3 = a3 + eye * (-min_eig * k**2 + spacing)
    raise GenzooError("could not make the LBAE code covariance positive definite", "report this with the run")


def fit_arcsine_sampler(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """From +-1 codes (n, z): (Cholesky factor L of H (z+1, z+1), code means (z,), whether H needed the fix)."""
    b = codes.detach().to("cpu", torch.float64)
    return arcsine_factor(b.T @ b / len(b), b.mean(0))


def arcsine_factor(second: torch.Tensor, mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """From the codes' second moments b^T b / n (z, z) and means (z,): (L, means, whether H needed the fix).

    G = [[b^T b / n, mean], [mean^T, 1]] holds the second moments of the codes augmented with a constant +1
    coordinate; H = sin(pi/2 G). Samples are sign(r L^T) with r ~ N(0, I), each row multiplied by its last
    coordinate (so E[b_i] = mean_i) and cut to the first z.
    """
    second, mean = second.to("cpu", torch.float64), mean.to("cpu", torch.float64)
    z = len(mean)
    g = torch.empty(z + 1, z + 1, dtype=torch.float64)
    g[:z, :z] = second
    g[:z, z] = g[z, :z] = mean
    g[z, z] = 1.0
    h = torch.sin(g * (math.pi / 2))
    chol, info = torch.linalg.cholesky_ex(h)
    fixed = int(info) != 0
    if fixed:
        chol = torch.linalg.cholesky(nearest_positive_definite(h))
    return chol, mean, fixed


def draw_arcsine(chol: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """+-1 codes (n, z) from standard normal draws r (n, z + 1) and the fitted factor L: sign(r L^T), each row
    multiplied by its always-on last coordinate (so E[b_i] = mean_i), cut to the first z."""
    b = torch.where(r @ chol.T >= 0, 1.0, -1.0)
    return b[:, :-1] * b[:, -1:]


def implied_moments(chol: torch.Tensor) -> torch.Tensor:
    """The augmented second moments (z + 1, z + 1) of codes drawn with L: 2/pi arcsin of L L^T's correlations."""
    h = chol.double() @ chol.double().T
    d = h.diagonal().sqrt()
    return torch.asin((h / d[:, None] / d[None]).clamp(-1, 1)) * (2 / math.pi)


def augmented_moments(codes: torch.Tensor) -> torch.Tensor:
    b = torch.cat([codes.double(), torch.ones(len(codes), 1, dtype=torch.float64)], 1)
    return b.T @ b / len(b)


@SAMPLERS.register("arcsine")
class ArcsineSampler(CodeSampler):
    """Binary +-1 codes (an LBAE's) with the training codes' means and pairwise moments (the arcsine law)."""

    has_density = False

    def __init__(self, dim: int):
        super().__init__(dim)
        self.register_buffer("chol", torch.eye(dim + 1, dtype=torch.float64))
        self.register_buffer("code_mean", torch.zeros(dim, dtype=torch.float64))

    def fit(self, codes, held_out, generator) -> dict:
        if not bool((codes.abs() == 1).all()):
            raise GenzooError(
                "the arcsine sampler fits binary +-1 codes (an LBAE's), and these codes are not",
                "fit a density for continuous codes instead: gmm, gaussian or flow",
            )
        chol, mean, fixed = fit_arcsine_sampler(codes)
        self.chol.copy_(chol)
        self.code_mean.copy_(mean)
        error = (implied_moments(self.chol) - augmented_moments(held_out)).abs().max()
        return {"higham_fix": fixed, "moment_error_held_out": float(error)}

    def sample(self, n, generator=None):
        return draw_arcsine(self.chol, standard_normal(n, self.dim + 1, generator)).float()

    def log_prob(self, z):
        raise GenzooError(
            "the arcsine sampler has no closed-form density (a code's probability is a Gaussian orthant probability)",
            "compare it by its samples (FID) or by the fit record's moment_error_held_out",
        )
