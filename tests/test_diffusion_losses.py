"""Denoising score matching: analytic minimum for Gaussian data, time sampling, a tiny fit."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from scorepde.diffusion import (
    NoiseProcess,
    ScoreModel,
    VEProcess,
    VPProcess,
    dsm_loss,
    sample_diffusion_times,
)
from scorepde.nets import MLPScoreNet
from scorepde.sampling import sample_probability_flow_heun

DTYPE = torch.float64


class ExactGaussianNoise:
    """Exact noise predictor ``-sigma_t * score`` for ``x0 ~ N(0, diag(variances))``."""

    def __init__(self, process: NoiseProcess, variances: Tensor, offset: float = 0.0) -> None:
        self.process = process
        self.variances = variances
        self.offset = offset  # 0.0: exact; otherwise a deliberately wrong prediction

    def total_variance(self, t: Tensor) -> Tensor:
        """``(B, d)``: the diagonal of ``m_t^2 Sigma + v_t I``."""
        return (
            self.process.mean_coef(t)[:, None] ** 2 * self.variances
            + self.process.variance(t)[:, None]
        )

    def predict_noise(self, x: Tensor, t: Tensor, cond: Tensor | None) -> Tensor:
        sigma = self.process.std(t)[:, None, None]
        return sigma * x / self.total_variance(t)[:, None, :] + self.offset


@pytest.mark.parametrize("process", [VPProcess(), VEProcess()], ids=["vp", "ve"])
def test_exact_score_attains_the_analytic_minimum(process: NoiseProcess) -> None:
    """For Gaussian data the minimum of E||eps_hat - eps||^2 / d at time t is
    ``1 - v_t mean_k(1 / c_k)`` with ``c_k = m_t^2 lambda_k + v_t``. With 20000 draws per t the
    Monte-Carlo loss of the exact predictor agrees within 5 standard errors, and a predictor
    off by 0.1 (expected excess 0.01) is worse by more than 5 standard errors."""
    variances = torch.tensor([0.2, 1.0, 3.0, 0.5], dtype=DTYPE)
    exact = ExactGaussianNoise(process, variances)
    wrong = ExactGaussianNoise(process, variances, offset=0.1)
    g = torch.Generator().manual_seed(0)
    for time in (0.01, 0.2, 0.6, 0.95):
        n = 20_000
        t = torch.full((n,), time, dtype=DTYPE)
        x0 = torch.randn(n, 1, 4, generator=g, dtype=DTYPE) * variances.sqrt()
        seed = int(1000 * time)
        loss = dsm_loss(exact, x0, None, t=t, generator=torch.Generator().manual_seed(seed))
        assert loss.shape == (n,)
        minimum = 1.0 - (exact.process.variance(t[:1]) / exact.total_variance(t[:1])).mean()
        se = loss.std() / n**0.5
        assert abs(loss.mean() - minimum) < 5 * se, (time, loss.mean(), minimum)
        worse = dsm_loss(wrong, x0, None, t=t, generator=torch.Generator().manual_seed(seed))
        assert (worse - loss).mean() > 5 * (worse - loss).std() / n**0.5


def test_stratified_times_cover_every_stratum() -> None:
    process = VPProcess()
    g = torch.Generator().manual_seed(0)
    t = sample_diffusion_times(process, 64, generator=g, stratified=True, dtype=DTYPE)
    assert t.shape == (64,) and t.dtype == DTYPE
    fraction = (t - process.t_min) / (process.t_max - process.t_min)
    strata = torch.sort(torch.floor(fraction * 64)).values
    torch.testing.assert_close(strata, torch.arange(64, dtype=DTYPE))
    assert not torch.all(t[1:] > t[:-1])  # shuffled, not sorted
    plain = sample_diffusion_times(process, 1000, generator=g, stratified=False)
    assert plain.min() >= process.t_min and plain.max() <= process.t_max


def test_loss_is_reproducible_and_checks_t_shape() -> None:
    torch.manual_seed(0)
    model = ScoreModel(MLPScoreNet(data_dim=3, hidden=16, depth=1), VPProcess())
    x0 = torch.randn(8, 1, 3)
    a = dsm_loss(model, x0, None, generator=torch.Generator().manual_seed(3))
    b = dsm_loss(model, x0, None, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="t must have shape"):
        dsm_loss(model, x0, None, t=torch.rand(3))


@pytest.mark.slow
def test_tiny_mlp_learns_a_conditional_gaussian() -> None:
    """A small MLP trained 2000 Adam steps (cosine learning rate) on
    x0 | c ~ N((2c, -c), diag(0.25, 1)) closes > 80 % of the gap between its initial validation
    loss and the loss of the exact noise predictor on the same draws (the attainable minimum,
    about 0.224: with EDM preconditioning the untrained net starts at about 0.32, so the former
    "30 % below the initial loss" asked for less than the minimum plus 0.002), and PF-ODE
    samples at c = 1 and c = 0.5 have means within 0.25 of (2c, -c) (5.5 standard errors of a
    500-sample mean of the unit-variance coordinate; after only 300 steps the weak coordinate
    is still off by 0.36 at c = 1; after 2000 the worst is 0.15). A loose check of the whole
    chain loss -> model -> sampler; ~10 s, so slow."""
    torch.manual_seed(0)
    process = VPProcess()
    model = ScoreModel(MLPScoreNet(data_dim=2, cond_dim=1, hidden=64, depth=2), process)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    steps = 2000
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    g = torch.Generator().manual_seed(1)
    scale = torch.tensor([0.5, 1.0])

    def batch(n: int) -> tuple[Tensor, Tensor]:
        c = torch.rand(n, 1, generator=g) * 2 - 1
        x = torch.cat([2 * c, -c], dim=1) + scale * torch.randn(n, 2, generator=g)
        return x[:, None, :], c

    x_val, c_val = batch(2048)

    class ExactConditional:
        """Exact noise predictor for x0 | c: Gaussian with mean (2c, -c), variances scale^2."""

        def __init__(self) -> None:
            self.process = process
            self.gaussian = ExactGaussianNoise(process, scale.square())

        def predict_noise(self, x: Tensor, t: Tensor, cond: Tensor) -> Tensor:
            mean = torch.cat([2 * cond, -cond], dim=1)[:, None, :]
            return self.gaussian.predict_noise(
                x - process.mean_coef(t)[:, None, None] * mean, t, None
            )

    def validation_loss(predictor) -> float:
        with torch.no_grad():
            generator = torch.Generator().manual_seed(9)  # the same t and noise for all
            return float(dsm_loss(predictor, x_val, c_val, generator=generator).mean())

    minimum = validation_loss(ExactConditional())
    initial = validation_loss(model)
    for _ in range(steps):
        x0, c = batch(256)
        loss = dsm_loss(model, x0, c, generator=g).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    final = validation_loss(model)
    assert minimum < final < minimum + 0.2 * (initial - minimum), (minimum, initial, final)
    model.eval()
    for c in (1.0, 0.5):
        samples = sample_probability_flow_heun(
            model, process, (1, 2), torch.tensor([c]), n=500, steps=30
        ).reshape(500, 2)
        expected = torch.tensor([2 * c, -c])
        assert torch.allclose(samples.mean(0), expected, atol=0.25), (c, samples.mean(0))


def test_loss_reaches_any_rank() -> None:
    """The same loss works for 2-D fields (B, C, H, W) with a convolutional stand-in."""

    class Conv2dBackbone(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)

        def forward(self, x: Tensor, noise_label: Tensor, cond: Tensor | None) -> Tensor:
            return self.conv(x) * noise_label[:, None, None, None]

    model = ScoreModel(Conv2dBackbone(), VEProcess())
    loss = dsm_loss(model, torch.randn(5, 2, 8, 8), None, generator=torch.Generator())
    assert loss.shape == (5,)
    loss.mean().backward()
