"""LBAE's arcsine-law sampler as a registered fitted sampler: the same functions as LBAE's own prior."""

import pytest
import torch

from genzoo.core.errors import GenzooError
from genzoo.core.registry import SAMPLERS, build
from genzoo.models.lbae import BernoulliCodes
from genzoo.samplers.arcsine import augmented_moments, implied_moments
from genzoo.samplers.fit import load_sampler, save_sampler


def biased_codes(n, z, seed=0):
    """+-1 codes with correlated bits (shared factors) and means away from 0 (offsets)."""
    g = torch.Generator().manual_seed(seed)
    factors, loading = torch.randn(n, 3, generator=g), torch.randn(3, z, generator=g)
    offset = torch.randn(z, generator=g) * 0.3
    return torch.where(factors @ loading + offset + 0.5 * torch.randn(n, z, generator=g) >= 0, 1.0, -1.0).double()


def test_arcsine_sampler_reproduces_means_and_pairwise_moments_as_lbae_prior_does():
    every = biased_codes(8000, 10)
    codes, held = every[:6000], every[6000:]
    sampler, _ = build(SAMPLERS, {"name": "arcsine"}, "sampler", dim=10)
    record = sampler.fit(codes, held, torch.Generator().manual_seed(0))
    assert not record["higham_fix"]  # H positive definite as it stands: the moments are reproduced exactly
    draws = sampler.sample(40000, generator=torch.Generator().manual_seed(1))
    assert draws.dtype == torch.float32 and set(draws.unique().tolist()) == {-1.0, 1.0}
    # means (the augmented last row) and pairwise moments of the training codes come back, to Monte Carlo error
    # (about 0.005 per entry at 40,000 draws); means of 0 (the always-on coordinate ignored) would miss by > 0.2
    target = augmented_moments(codes)
    assert (augmented_moments(draws) - target).abs().max() < 0.03
    assert target[-1, :-1].abs().max() > 0.15
    # the record scores held-out codes against the moments the fit implies
    assert 0 < record["moment_error_held_out"] < 5 / len(held) ** 0.5  # within the held-out codes' own noise
    assert (
        abs(record["moment_error_held_out"] - (implied_moments(sampler.chol) - augmented_moments(held)).abs().max())
        < 1e-12
    )
    # one code path with LBAE's own prior: the same fitted factor
    prior = BernoulliCodes(10)
    prior.fit(codes)
    torch.testing.assert_close(prior.chol, sampler.chol.float())
    theirs = prior.sample(40000, generator=torch.Generator().manual_seed(2)).double()
    assert (augmented_moments(theirs) - augmented_moments(draws)).abs().max() < 0.03


def test_arcsine_sampler_refuses_continuous_codes_and_has_no_density():
    sampler, _ = build(SAMPLERS, {"name": "arcsine"}, "sampler", dim=4)
    with pytest.raises(GenzooError, match="binary") as refused:
        sampler.fit(torch.randn(100, 4, dtype=torch.float64), torch.randn(10, 4), torch.Generator())
    assert "gmm" in str(refused.value)
    assert not sampler.has_density
    with pytest.raises(GenzooError, match="no closed-form density"):
        sampler.log_prob(torch.ones(3, 4))


def test_arcsine_sampler_round_trips_through_its_folder(tmp_path):
    codes = biased_codes(3000, 6)
    sampler, section = build(SAMPLERS, {"name": "arcsine"}, "sampler", dim=6)
    sampler.section, sampler.record = section, sampler.fit(codes, codes[:100], torch.Generator())
    back = load_sampler(save_sampler(sampler, tmp_path / "arcsine"))
    one, two = (s.sample(64, generator=torch.Generator().manual_seed(3)) for s in (sampler, back))
    assert torch.equal(one, two)
