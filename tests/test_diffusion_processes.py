"""Noise processes: marginals, their consistency with the SDE coefficients, configs."""

from __future__ import annotations

import math

import pytest
import torch

from scorepde.configuration import ConfigError
from scorepde.diffusion import PROCESSES, NoiseProcess, VEProcess, VPProcess, build_process
from scorepde.tensor_utils import append_dims, batch_times

DTYPE = torch.float64
ALL = [VPProcess(), VEProcess(), VPProcess(beta_min=1.0, beta_max=1.0, t_min=0.01)]


def test_vp_preserves_variance() -> None:
    """VP: m_t^2 + sigma_t^2 = 1 for all t, also in float32 near t = 0 (expm1)."""
    process = VPProcess()
    t = torch.linspace(0.0, 1.0, 101, dtype=DTYPE)
    torch.testing.assert_close(process.mean_coef(t) ** 2 + process.variance(t), torch.ones_like(t))
    small = torch.tensor([1e-6], dtype=torch.float32)
    expected = process.beta_min * 1e-6  # v ~ alpha(t) for small t
    assert abs(process.variance(small).item() - expected) / expected < 1e-3


@pytest.mark.parametrize("process", ALL, ids=lambda p: p.to_config()["name"])
def test_marginals_solve_the_moment_equations(process: NoiseProcess) -> None:
    """For dx = a(t) x dt + g dW: m' = a m and (sigma^2)' = 2 a sigma^2 + g^2 (central
    differences, relative error < 1e-5)."""
    t = torch.linspace(0.05, 0.95, 19, dtype=DTYPE)
    h = 1e-5
    dm = (process.mean_coef(t + h) - process.mean_coef(t - h)) / (2 * h)
    dv = (process.variance(t + h) - process.variance(t - h)) / (2 * h)
    rate = process.drift(torch.ones(19, 1, dtype=DTYPE), t)[:, 0]  # a(t)
    torch.testing.assert_close(dm, rate * process.mean_coef(t), rtol=1e-5, atol=1e-9)
    expected = 2 * rate * process.variance(t) + process.diffusion(t) ** 2
    torch.testing.assert_close(dv, expected, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("process", ALL[:2], ids=["vp", "ve"])
def test_marginals_match_simulated_forward_sde(process: NoiseProcess) -> None:
    """Euler-Maruyama on the forward SDE (2000 paths, 500 steps on [0, 1]) from a fixed x0:
    mean and std at t = 0.1, 0.5, 1 match m_t x0 and sigma_t within 5 SE + 1.5 % (the Euler
    bias of the VP variance is ~ beta_max dt / 4 = 1 %; SE of a std ~ std sqrt(1 / (2 paths))).
    VE starts from x0 + sigma_min z (the convention under which x0 + sigma(t) z is exact)."""
    g = torch.Generator().manual_seed(0)
    paths, steps = 2000, 500
    x0 = torch.tensor([0.7, -1.3], dtype=DTYPE)
    x = x0.expand(paths, 2).clone()
    if isinstance(process, VEProcess):
        x += process.sigma_min * torch.randn(paths, 2, generator=g, dtype=DTYPE)
    dt = 1.0 / steps
    checkpoints = {50: 0.1, 250: 0.5, 500: 1.0}
    for i in range(steps):
        t = torch.full((paths,), i * dt, dtype=DTYPE)
        noise = torch.randn(paths, 2, generator=g, dtype=DTYPE)
        x = (
            x
            + process.drift(x, t) * dt
            + append_dims(process.diffusion(t), 2) * math.sqrt(dt) * noise
        )
        if i + 1 in checkpoints:
            t_now = torch.tensor(checkpoints[i + 1], dtype=DTYPE)
            mean, std = process.mean_coef(t_now) * x0, process.std(t_now)
            se = std / math.sqrt(paths)
            assert torch.all((x.mean(0) - mean).abs() <= 5 * se + 0.015 * std), (i, x.mean(0), mean)
            rel = (x.std(0) / std - 1).abs()
            assert torch.all(rel <= 5 * math.sqrt(0.5 / paths) + 0.015), (i, x.std(0), std)


@pytest.mark.parametrize("process", ALL, ids=lambda p: p.to_config()["name"])
def test_time_from_noise_ratio_inverts_noise_ratio(process: NoiseProcess) -> None:
    t = torch.linspace(process.t_min, process.t_max, 50, dtype=DTYPE)
    torch.testing.assert_close(process.time_from_noise_ratio(process.noise_ratio(t)), t)
    torch.testing.assert_close(process.noise_ratio(t), process.std(t) / process.mean_coef(t))


def test_prior_and_perturb() -> None:
    ve = VEProcess()
    assert ve.prior_std() == pytest.approx(50.0)
    assert VPProcess().prior_std() == 1.0
    x0 = torch.ones(3, 2, 5)
    noise = torch.randn(3, 2, 5, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([0.1, 0.5, 0.9])
    x_t = VPProcess().perturb(x0, t, noise)
    vp = VPProcess()
    expected = vp.mean_coef(t)[:, None, None] * x0 + vp.std(t)[:, None, None] * noise
    torch.testing.assert_close(x_t, expected)


@pytest.mark.parametrize("process", ALL, ids=lambda p: p.to_config()["name"])
def test_config_round_trip(process: NoiseProcess) -> None:
    config = process.to_config()
    assert config["name"] in PROCESSES
    assert build_process(config) == process
    assert build_process(dict(config)).to_config() == config


def test_config_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="unknown noise process 'edm'"):
        build_process({"name": "edm"})
    with pytest.raises(ConfigError, match="unknown key"):
        build_process({"name": "vp", "beta_mni": 0.1})
    with pytest.raises(ConfigError, match="'name' key"):
        build_process({"beta_min": 0.1})
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        VEProcess(sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(ValueError, match="t_min < t_max"):
        VPProcess(t_min=0.0)


def test_append_dims_and_batch_times() -> None:
    v = torch.arange(3.0)
    assert append_dims(v, 4).shape == (3, 1, 1, 1)
    assert append_dims(v, 1).shape == (3,)
    with pytest.raises(ValueError, match="more than the target rank"):
        append_dims(torch.ones(3, 2), 1)
    like = torch.zeros(4, 2, dtype=DTYPE)
    assert batch_times(0.5, 4, like=like).shape == (4,)
    assert batch_times(torch.tensor([0.5]), 4, like=like).dtype == DTYPE
    with pytest.raises(ValueError, match="diffusion time must be"):
        batch_times(torch.ones(3), 4, like=like)
