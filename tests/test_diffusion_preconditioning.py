"""ScoreModel: the noise parametrisation, Tweedie denoising and the input scaling."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from scorepde.diffusion import ScoreModel, VEProcess, VPProcess


class RecordingBackbone(nn.Module):
    """Returns a fixed multiple of its input and records what it received."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(0.3))
        self.seen: dict[str, Tensor | None] = {}

    def forward(self, x: Tensor, noise_label: Tensor, cond: Tensor | None) -> Tensor:
        self.seen = {"x": x, "noise_label": noise_label, "cond": cond}
        return self.weight * x


@pytest.mark.parametrize("process", [VPProcess(), VEProcess()], ids=["vp", "ve"])
def test_score_denoise_and_input_scaling(process: VPProcess | VEProcess) -> None:
    """score = -eps_hat / sigma_t; denoise = (x + sigma^2 score) / m (Tweedie); the backbone gets
    c_in x with c_in = 1 / sqrt(m^2 + sigma^2) (sigma_data = 1) and the process's noise label."""
    backbone = RecordingBackbone()
    model = ScoreModel(backbone, process, parametrisation="eps")
    x = torch.randn(4, 2, 16, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0.01, 0.2, 0.5, 1.0])
    cond = torch.ones(4, 3)
    m, sigma = process.mean_coef(t)[:, None, None], process.std(t)[:, None, None]
    c_in = 1.0 / torch.sqrt(m**2 + sigma**2)
    eps = 0.3 * c_in * x
    with torch.no_grad():
        torch.testing.assert_close(model.predict_noise(x, t, cond), eps)
        torch.testing.assert_close(backbone.seen["x"], c_in * x)
        torch.testing.assert_close(backbone.seen["noise_label"], process.noise_label(t))
        assert backbone.seen["cond"] is cond
        score = model(x, t, cond)
        torch.testing.assert_close(score, -eps / sigma)
        torch.testing.assert_close(model.denoise(x, t, cond), (x + sigma**2 * score) / m)
        # a scalar time is broadcast over the batch
        torch.testing.assert_close(model(x, 0.5, cond), model(x, torch.full((4,), 0.5), cond))


def test_input_scaling_can_be_switched_off_and_config_round_trips() -> None:
    model = ScoreModel(
        RecordingBackbone(), VEProcess(sigma_max=10.0), sigma_data=None, parametrisation="eps"
    )
    torch.testing.assert_close(model.input_scale(torch.tensor([0.3, 1.0])), torch.ones(2))
    rebuilt = ScoreModel.from_config(RecordingBackbone(), model.config())
    assert rebuilt.process == model.process and rebuilt.sigma_data is None
    assert rebuilt.parametrisation == "eps"
    with pytest.raises(ValueError, match="needs a positive sigma_data"):
        ScoreModel(RecordingBackbone(), VPProcess(), sigma_data=None)
    with pytest.raises(ValueError, match="parametrisation = 'x0' is not allowed"):
        ScoreModel(RecordingBackbone(), VPProcess(), parametrisation="x0")
    with pytest.raises(ValueError, match="sigma_data must be positive"):
        ScoreModel(RecordingBackbone(), VPProcess(), sigma_data=0.0)
    assert isinstance(model.backbone, RecordingBackbone)
    assert [name for name, _ in model.named_parameters()] == ["backbone.weight"]


class ZeroBackbone(nn.Module):
    def forward(self, x: Tensor, noise_label: Tensor, cond: Tensor | None) -> Tensor:
        return torch.zeros_like(x)


@pytest.mark.parametrize("process", [VPProcess(), VEProcess()], ids=["vp", "ve"])
@pytest.mark.parametrize("sigma_data", [0.5, 1.0, 2.0])
def test_edm_skip_alone_is_the_exact_score_of_a_centred_gaussian(
    process: VPProcess | VEProcess, sigma_data: float
) -> None:
    """With F = 0 the EDM form gives D = c_skip x^, which is E[x_0 | x_t] for
    x_0 ~ N(0, sigma_data^2 I); so the score must equal the exact Gaussian score
    -x / (m^2 sigma_data^2 + sigma^2) at every t (to float32 round-off)."""
    model = ScoreModel(ZeroBackbone(), process, sigma_data=sigma_data, parametrisation="edm")
    x = torch.randn(5, 2, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    t = torch.tensor([process.t_min, 0.05, 0.3, 0.7, 1.0], dtype=torch.float64)
    m, var = process.mean_coef(t)[:, None, None], process.variance(t)[:, None, None]
    exact = -x / (m**2 * sigma_data**2 + var)
    torch.testing.assert_close(model(x, t, None), exact, rtol=1e-9, atol=0.0)
    torch.testing.assert_close(
        model.denoise(x, t, None), m * sigma_data**2 * x / (m**2 * sigma_data**2 + var)
    )


def test_edm_network_error_is_damped_at_high_noise() -> None:
    """A unit network output changes eps_hat by sigma_data / sqrt(sigma~^2 + sigma_data^2):
    ~1 at low noise, ~sigma_data / sigma~ (< 0.01 under VP at t = 1) at high noise."""
    process = VPProcess()
    zero = ScoreModel(ZeroBackbone(), process)
    x = torch.zeros(2, 1, 4)
    t = torch.tensor([process.t_min, 1.0])

    class OneBackbone(nn.Module):
        def forward(self, x: Tensor, noise_label: Tensor, cond: Tensor | None) -> Tensor:
            return torch.ones_like(x)

    change = ScoreModel(OneBackbone(), process).predict_noise(x, t, None) - zero.predict_noise(
        x, t, None
    )
    ratio = process.std(t) / process.mean_coef(t)
    expected = -1.0 / torch.sqrt(ratio**2 + 1.0)
    torch.testing.assert_close(change[:, 0, 0], expected)
    assert abs(float(change[1, 0, 0])) < 0.01 < 0.9 < abs(float(change[0, 0, 0]))
