"""Elastography: the priors on mu (inclusions, log-Gaussian field), the Problem's pairs, the
inverse problem's noise models, and a resumable campaign of (log_mu, u) pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scorepde.configuration import ConfigError
from scorepde.data import campaign
from scorepde.data.campaign import SimulationConfig, parts_folder, simulate_campaign
from scorepde.data.schema import read_dataset
from scorepde.inverse.elasticity import Elastography
from scorepde.inverse.noise_models import AdditiveGaussian, MultiplicativeLogNormal, StudentT
from scorepde.inverse.problems import build_inverse_problem
from scorepde.physics.elasticity import ElasticitySolver
from scorepde.problems import get_problem
from scorepde.problems.elasticity import ElasticityProblem, inclusion_modulus, sample_inclusions


def test_inclusion_modulus_area_and_values() -> None:
    """One disc of radius 0.3 at (0.45, 0.5): cells well inside get the contrast, cells well
    outside 1, and the excess sum((mu - 1) / (contrast - 1)) / n^2 is the disc's area pi r^2 to
    within the sub-sampling error (measured 0.3 % at 32 x 32 x 4 x 4; tolerance 1 %)."""
    n, r, contrast = 32, 0.3, 5.0
    mu = inclusion_modulus(np.array([[[0.45, 0.5, r]]]), contrast, n)[0]
    centres = (np.arange(n) + 0.5) / n
    x, y = np.meshgrid(centres, centres)
    distance = np.hypot(x - 0.45, y - 0.5)
    np.testing.assert_array_equal(mu[distance < r - 0.05], contrast)
    np.testing.assert_array_equal(mu[distance > r + 0.05], 1.0)
    area = np.sum((mu - 1.0) / (contrast - 1.0)) / n**2
    assert area == pytest.approx(np.pi * r**2, rel=0.01)
    assert mu.min() >= 1.0 and mu.max() <= contrast


def test_sampled_inclusions_lie_inside_the_square() -> None:
    discs = sample_inclusions(2000, np.random.default_rng(0), n_inclusions=2)
    assert discs.shape == (2000, 2, 3)
    centres, radius = discs[..., :2], discs[..., 2:]
    assert np.all((radius >= 0.1) & (radius <= 0.25))
    assert np.all((centres - radius >= 0.0) & (centres + radius <= 1.0))
    # centres uniform on [r, 1 - r]: mean 1/2 (std error ~0.004 over 4000 values)
    assert abs(centres.mean() - 0.5) < 0.02


@pytest.mark.parametrize("prior", ["inclusion", "grf"])
def test_problem_pairs_are_reproducible_and_consistent(prior: str) -> None:
    """Same seeds, same fields; the u channels are the solver's displacement of exp(log_mu);
    latent and condition shapes as declared."""
    problem = get_problem("elasticity2d", n_cells=8, prior=prior)
    conditions = problem.default_evaluation_conditions()
    seeds = list(range(len(conditions)))
    first = problem.simulate(conditions, 3, seeds)
    second = problem.simulate(conditions, 3, seeds)
    np.testing.assert_array_equal(first["fields"], second["fields"])
    fields = first["fields"]
    assert fields.shape == (3 * len(conditions), 3, 8, 8)
    assert first["latent"].shape[1:] == problem.latent_shape
    u = ElasticitySolver(8).solve(np.exp(fields[:, 0]))
    np.testing.assert_allclose(fields[:, 1:], u, rtol=0, atol=1e-15)
    assert problem.field_spec.channels == ("log_mu", "u_x", "u_y")


def test_grf_prior_has_the_requested_spread() -> None:
    """log mu = sigma g: the pooled standard deviation over 400 fields of 8 x 8 is sigma
    (tolerance 10 %; the standard error of the pooled estimate is ~4 % for l = 0.15)."""
    problem = ElasticityProblem(8, "grf")
    latent = problem.sample_latent(np.array([0.15, 0.7]), 400, np.random.default_rng(1))
    log_mu = problem.log_modulus(latent, np.tile([0.15, 0.7], (400, 1)))
    assert np.std(log_mu) == pytest.approx(0.7, rel=0.1)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"prior": "bumps"}, "prior"),
        ({"n_cells": 3}, "n_cells"),
        ({"n_inclusions": 3}, "n_inclusions"),
        ({"radius_range": (0.3, 0.6)}, "radius_range"),
        ({"supersample": 0}, "supersample"),
        ({"poisson_ratio": 0.5}, "poisson_ratio"),
    ],
)
def test_bad_problem_options_are_refused(options: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ElasticityProblem(**{"n_cells": 8, **options})


@pytest.mark.parametrize("level", [0.025, 0.05, 0.1])
def test_gaussian_noise_is_the_level_times_the_compression(level: float) -> None:
    """y - F(x) has standard deviation level * delta (delta = 0.01, the range of u_y); with
    2 x 2 x 8 x 8 = 256 values the relative standard error is ~4 %: tolerance 15 %."""
    problem = build_inverse_problem("elasticity", {"n_cells": 8, "noise_level": level})
    assert isinstance(problem.noise, AdditiveGaussian)
    assert problem.noise.std == pytest.approx(level * 0.01)
    rng = np.random.default_rng(2)
    x = problem.sample_prior(2, rng)
    clean = problem.forward(x)
    assert x.shape == (2, 1, 8, 8) and clean.shape == (2, 2, 8, 8)
    noisy = problem.noise.sample(clean, rng)
    assert np.std(noisy - clean) == pytest.approx(level * 0.01, rel=0.15)


def test_non_gaussian_noise_options_and_checks() -> None:
    heavy = Elastography("grf", 8, noise="student_t", noise_level=0.05, df=3.0)
    assert heavy.noise == StudentT(3.0, 0.05 * 0.01)
    relative = Elastography("inclusion", 8, noise="multiplicative", noise_level=0.1)
    assert relative.noise == MultiplicativeLogNormal(0.1)
    with pytest.raises(ValueError, match="noise"):
        Elastography(n_cells=8, noise="laplace")
    with pytest.raises(ValueError, match="contrast_range"):
        Elastography(n_cells=8, contrast_range=(3.0, 2.0))
    with pytest.raises(ValueError, match="x has shape"):
        heavy.forward(np.zeros((2, 8, 8)))
    with pytest.raises(ConfigError, match="elasticity"):
        build_inverse_problem("elasticity", {"prior": "bumps"})


def tiny_elasticity_campaign(**changes) -> SimulationConfig:
    options = {
        "problem": "elasticity2d",
        "n_conditions": 4,
        "per_condition": 2,
        "seed": 3,
        "chunk_conditions": 1,
        "problem_options": {"n_cells": 8, "prior": "inclusion"},
    }
    return SimulationConfig(**{**options, **changes})


def test_interrupted_campaign_resumes_to_the_same_pairs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(log_mu, u_x, u_y) pairs in the forward schema; a run killed after two of four chunks
    continues from them and writes the same file as an uninterrupted run."""
    reference = read_dataset(
        simulate_campaign(tiny_elasticity_campaign(), tmp_path / "ref.h5", progress=False)
    )
    assert reference.fields.shape == (8, 3, 8, 8)
    assert reference.channels == ("log_mu", "u_x", "u_y")
    assert reference.latent.shape == (8, 1, 3) and reference.latent_name == "inclusions"
    assert reference.attrs["schema"] == "scorepde.fields/2"
    contrast = reference.conditions[:, 0]
    assert np.all((contrast >= 2.0) & (contrast <= 8.0))

    out = tmp_path / "crash.h5"
    real_run_chunk = campaign._run_chunk
    calls = {"n": 0}

    def crash_after_two(task):
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated crash")
        calls["n"] += 1
        return real_run_chunk(task)

    monkeypatch.setattr(campaign, "_run_chunk", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        simulate_campaign(tiny_elasticity_campaign(), out, progress=False)
    assert not out.exists()
    assert len(list(parts_folder(out).glob("chunk_*.npz"))) == 2
    monkeypatch.setattr(campaign, "_run_chunk", real_run_chunk)
    resumed = read_dataset(simulate_campaign(tiny_elasticity_campaign(), out, progress=False))
    for name in ("fields", "latent", "conditions", "condition_index"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(reference, name))
