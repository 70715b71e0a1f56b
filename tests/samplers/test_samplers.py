"""Fitted samplers: the gmm against scikit-learn, the flow against one Gaussian, folders, commands."""

import json
import shutil

import numpy as np
import pytest
import torch
from scipy import stats

import genzoo
from genzoo.core.errors import GenzooError
from genzoo.core.registry import SAMPLERS, build
from genzoo.samplers.fit import load_sampler, save_sampler
from tests.helpers.cli import ONE_THREAD, run_cli
from tests.helpers.recipes import TINY, write_recipe


def fitted(name, codes, held_out=None, seed=0, **options):
    sampler, section = build(SAMPLERS, {"name": name, **options}, "sampler", dim=codes.shape[1])
    record = sampler.fit(codes, codes[:50] if held_out is None else held_out, torch.Generator().manual_seed(seed))
    sampler.section, sampler.record = section, record
    return sampler.eval()


def mixture_codes(n, seed):
    """Codes from the zoo's 10-mode mixture prior in 4 dimensions (radius 4, mode std 0.5)."""
    prior, _ = build(genzoo.PRIORS, {"name": "mixture", "modes": 10, "radius": 4.0, "mode_std": 0.5}, "prior", dim=4)
    return prior.sample(n, generator=torch.Generator().manual_seed(seed)).double()


def test_gmm_equals_scikit_learn_on_the_same_codes():
    from sklearn.mixture import GaussianMixture

    codes = mixture_codes(3000, 0)
    ours = fitted("gmm", codes, components=10)
    theirs = GaussianMixture(10, covariance_type="full", random_state=ours.record["sklearn_seed"]).fit(codes.numpy())
    z = mixture_codes(500, 1)
    np.testing.assert_allclose(ours.log_prob(z).numpy(), theirs.score_samples(z.numpy()), rtol=0, atol=1e-6)
    # samples from the stored tensors are distributed as sklearn's own `sample`: a two-sample KS test on every
    # coordinate and on random directions, which a wrong sampler (mixture weights shuffled) fails
    mine = ours.sample(4000, generator=torch.Generator().manual_seed(2)).double().numpy()
    ref = theirs.sample(4000)[0]
    directions = np.vstack([np.eye(4), np.random.default_rng(3).normal(size=(6, 4))])
    assert min(stats.ks_2samp(mine @ d, ref @ d).pvalue for d in directions) > 1e-3
    wrong = fitted("gmm", codes, components=10)
    wrong.weights.copy_(torch.linspace(1, 20, 10, dtype=torch.float64) / torch.linspace(1, 20, 10).sum())
    bad = wrong.sample(4000, generator=torch.Generator().manual_seed(2)).double().numpy()
    assert min(stats.ks_2samp(bad @ d, ref @ d).pvalue for d in directions) < 1e-3


def test_flow_beats_one_gaussian_on_the_mixture_priors_codes():
    codes, held = mixture_codes(4000, 0), mixture_codes(1000, 1)
    gauss = fitted("gaussian", codes, held)
    flow = fitted("flow", codes, held, steps=1500, eval_every=100)
    ll_gauss, ll_flow = float(gauss.log_prob(held).mean()), float(flow.log_prob(held).mean())
    # ten well-separated modes: one Gaussian spreads its mass over the empty space between them
    assert ll_flow > ll_gauss + 1.0, (ll_flow, ll_gauss)
    assert flow.record["best_step"] >= 100 and flow.record["steps_run"] <= 1500


@pytest.mark.parametrize(
    "name,options",
    [
        ("gaussian", {}),
        ("gmm", {"components": 3}),
        ("flow", {"steps": 100, "hidden": 16}),
        ("two_stage", {"steps": 100, "hidden": 16}),
    ],
)
def test_save_and_load_give_identical_samples(tmp_path, name, options):
    sampler = fitted(name, mixture_codes(600, 0), **options)
    back = load_sampler(save_sampler(sampler, tmp_path / name))
    assert back.section == sampler.section and back.record == sampler.record
    for s in (sampler, back):
        s.draws = s.sample(64, generator=torch.Generator().manual_seed(5))
    assert torch.equal(sampler.draws, back.draws)
    z = mixture_codes(64, 9)
    torch.testing.assert_close(sampler.log_prob(z), back.log_prob(z), rtol=0, atol=0)


def test_a_pickle_or_a_missing_tensor_is_refused(tmp_path):
    folder = save_sampler(fitted("gmm", mixture_codes(300, 0), components=2), tmp_path / "gmm")
    weights = folder / "sampler.safetensors"
    data = weights.read_bytes()
    weights.unlink()
    torch.save({"means": torch.zeros(2, 4)}, folder / "sampler.pt")  # a pickle is never read
    with pytest.raises(GenzooError, match="missing .*never from pickle"):
        load_sampler(folder)
    from safetensors.torch import load_file, save_file

    weights.write_bytes(data)
    state = load_file(weights)
    del state["means"]
    save_file(state, weights)
    with pytest.raises(GenzooError, match="does not fit sampler 'gmm' \\(missing \\['means'\\]"):
        load_sampler(folder)


def test_fit_sample_and_eval_with_a_fitted_sampler_from_the_command_line(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run("aae"), tmp_path / "tiny")  # the shared tiny MLP AAE; fit-sampler writes: a copy
    run_cli("fit-sampler", run, "--sampler", "gmm", "gmm.components=3", "--seed", "1", env=ONE_THREAD)
    config = json.loads((run / "model" / "samplers" / "gmm" / "config.json").read_text())
    assert (
        config["sampler"]["components"] == 3 and config["fit"]["fit_codes"] + config["fit"]["held_out_codes"] == 1500
    )
    # the prior-sampling model is untouched and still the default
    prior = genzoo.load(run).sample(8, generator=torch.Generator().manual_seed(0))
    gmm = genzoo.load(run, sampler="gmm").sample(8, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(prior, gmm)
    out = run / "gmm.png"
    run_cli("sample", run, "--sampler", "gmm", "-n", "8", "--out", out, env=ONE_THREAD)
    assert out.stat().st_size > 0
    run_cli("eval", run, "--sampler", "gmm", "--out", run / "e.json", env=ONE_THREAD)
    protocol = json.loads((run / "e.json").read_text())["reconstruction"]["protocol"]
    assert protocol["sampler"]["name"] == "gmm" and protocol["sampler"]["fit"]["seed"] == 1
    # a second fit under the same name is refused unless asked; a sampler fitted on other weights is refused
    again = run_cli("fit-sampler", run, "--sampler", "gmm", check=False, env=ONE_THREAD)
    assert again.returncode == 1 and "already fitted" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    config["fit"]["model_weights_sha256"] = "0" * 64
    (run / "model" / "samplers" / "gmm" / "config.json").write_text(json.dumps(config))
    with pytest.raises(GenzooError, match="fitted on other weights"):
        genzoo.load(run, sampler="gmm")
    missing = run_cli("sample", run, "--sampler", "flow", check=False, env=ONE_THREAD)
    assert missing.returncode == 1 and "no sampler 'flow' is fitted" in missing.stderr
    listed = run_cli("list", "samplers", env=ONE_THREAD).stdout
    assert all(name in listed for name in ("prior", "gaussian", "gmm", "flow", "two_stage"))


def test_one_metric_draws_from_a_fitted_sampler_the_others_from_the_prior(tmp_path):
    """`parzen.sampler=gmm`: that metric's samples come from the fitted sampler (the same numbers as a model loaded
    with it), the other metrics' from the prior, each protocol saying which; metrics without samples refuse it."""
    run = genzoo.fit(genzoo.recipe(str(write_recipe(tmp_path, train={**TINY["train"], "steps": 20}))))
    genzoo.fit_sampler(run, "gmm", {"components": 2}, seed=0)
    parzen = {"samples": 200, "count": 100, "validation_count": 50}
    options = {"parzen": {**parzen, "sampler": "gmm"}, "prior_match": {"samples": 200}}
    mixed = genzoo.evaluate(run, ["parzen", "prior_match"], options=options)
    via_load = genzoo.evaluate(genzoo.load(run, sampler="gmm"), ["parzen"], options={"parzen": parzen})
    via_prior = genzoo.evaluate(run, ["parzen"], options={"parzen": parzen})
    assert mixed["parzen"]["log_likelihood"] == via_load["parzen"]["log_likelihood"]
    assert mixed["parzen"]["log_likelihood"] != via_prior["parzen"]["log_likelihood"]
    assert mixed["parzen"]["protocol"]["sampler"]["name"] == "gmm"
    assert mixed["parzen"]["protocol"]["options"]["sampler"] == "gmm"
    assert mixed["prior_match"]["protocol"]["sampler"] == {"name": "prior"}
    with pytest.raises(GenzooError, match="reconstruction.sampler' applies to a metric that draws samples"):
        genzoo.evaluate(run, ["reconstruction"], options={"reconstruction": {"sampler": "gmm"}})
    with pytest.raises(GenzooError, match="no sampler 'flow' is fitted"):
        genzoo.evaluate(run, ["parzen"], options={"parzen": {**parzen, "sampler": "flow"}})


def test_compare_evaluates_each_model_under_each_fitted_sampler(tmp_path):
    """`genzoo compare RUN --samplers prior,gmm`: one report row per (model, sampler), the gmm row's numbers those
    of the model loaded with its fitted gmm; a sampler not fitted is refused before any evaluation."""
    run = genzoo.fit(genzoo.recipe(str(write_recipe(tmp_path, train={**TINY["train"], "steps": 20}))))
    genzoo.fit_sampler(run, "gmm", {"components": 2}, seed=0)
    parzen = ["parzen.samples=200", "parzen.count=100", "parzen.validation_count=50"]
    out = tmp_path / "report"
    args = ["compare", run, *parzen, "--metrics", "parzen", "--samplers", "prior,gmm", "--out", out, "--samples", "4"]
    run_cli(*args, env=ONE_THREAD)
    runs = json.loads((out / "results.json").read_text())["runs"]
    rows = {label: entry["results"]["parzen"] for label, entry in runs.items()}
    assert sorted(rows) == [run.name, f"{run.name}+gmm"]
    options = {"parzen": {"samples": 200, "count": 100, "validation_count": 50}}
    direct = genzoo.evaluate(genzoo.load(run, sampler="gmm"), ["parzen"], options=options)["parzen"]
    assert rows[f"{run.name}+gmm"]["log_likelihood"] == direct["log_likelihood"]
    assert rows[run.name]["log_likelihood"] != direct["log_likelihood"]
    assert rows[f"{run.name}+gmm"]["protocol"]["sampler"]["name"] == "gmm"
    refused = run_cli("compare", run, "--samplers", "flow", "--out", tmp_path / "r2", check=False, env=ONE_THREAD)
    assert refused.returncode == 1 and "no sampler 'flow' is fitted" in refused.stderr, refused.stderr
    assert "genzoo fit-sampler" in refused.stderr and not (tmp_path / "r2").exists()


def test_vae_codes_are_posterior_means_or_draws(tmp_path):
    recipe = write_recipe(
        tmp_path,
        model={"name": "vae", "latent_dim": 4, "max_filters": 16, "layers": 2, "reconstruction": "bce"},
        prior={"name": "gaussian", "std": 1.0},
        train={**TINY["train"], "steps": 20},
    )
    run = genzoo.fit(genzoo.recipe(str(recipe)))
    _, mean = genzoo.fit_sampler(run, "gaussian", limit=200)
    _, draw = genzoo.fit_sampler(run, "gaussian", name="gaussian_draws", limit=200, codes="draw")
    assert mean["codes"] == "mean" and draw["codes"] == "draw"
    # the draws add the posterior's noise: a wider fit, so a lower log-likelihood of its own codes
    assert draw["log_likelihood_fit"] < mean["log_likelihood_fit"]
    with pytest.raises(GenzooError, match="codes 'draw' needs a model with a posterior"):
        genzoo.fit_sampler(
            genzoo.fit(genzoo.recipe(str(write_recipe(tmp_path, name="aae")))), "gaussian", codes="draw"
        )


def test_the_ae_arm_has_no_matching_and_the_rae_terms_shrink_what_they_penalise(tmp_path):
    """The deterministic AE (one reconstruction phase, no discriminator) and its RAE-L2 variant, same networks."""
    base = {"name": "ae", "latent_dim": 4, "hidden": 64, "dropout": 0.0}
    train = {**TINY["train"], "steps": 80, "phases": {"reconstruction": {"lr": 1e-3}}}
    runs = {}
    for label, extra in (("ae", {}), ("rae", {"code_l2": 1.0, "decoder_l2": 1e-3})):
        recipe = write_recipe(tmp_path, name=label, model={**base, **extra}, train=train)
        runs[label] = genzoo.fit(genzoo.recipe(str(recipe)))
    ae, rae = genzoo.load(runs["ae"]), genzoo.load(runs["rae"])
    assert ae.discriminator is None and not any("discriminator" in k for k in ae.state_dict())
    logged = json.loads((runs["rae"] / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"loss/code_l2", "loss/decoder_l2"} <= set(logged)
    x = torch.rand(200, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        norms = {k: float(m.encode(x).norm(dim=1).mean()) for k, m in (("ae", ae), ("rae", rae))}
        weights = {
            k: float(sum(p.square().sum() for n, p in m.decoder.named_parameters() if n.endswith("weight")))
            for k, m in (("ae", ae), ("rae", rae))
        }
    assert norms["rae"] < 0.5 * norms["ae"] and weights["rae"] < weights["ae"], (norms, weights)


def test_two_stage_learns_the_codes_instead_of_its_trivial_optimum():
    """Dai & Wipf's second VAE: from gamma = 1 it had stayed at the trivial optimum (a constant decoder, samples all
    at the codes' mean); it must spread its samples like the codes and bound the density above one Gaussian's."""
    codes, held = mixture_codes(4000, 0), mixture_codes(1000, 1)
    two = fitted("two_stage", codes, held, steps=1500)
    draws = two.sample(4000, generator=torch.Generator().manual_seed(0)).double()
    ratio = draws.std(0) / codes.std(0)
    assert bool(((ratio > 0.8) & (ratio < 1.2)).all()), ratio
    assert float(two.log_prob(held).mean()) > float(fitted("gaussian", codes, held).log_prob(held).mean()) + 0.2
    assert two.record["gamma"] < 0.5
