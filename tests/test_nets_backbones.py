"""Backbones: shapes, parameter count, conditioning, registry, embeddings."""

from __future__ import annotations

import pytest
import torch

from scorepde.configuration import ConfigError, from_dict, to_dict
from scorepde.nets import (
    BACKBONES,
    BackboneConfig,
    FiLMConvNet,
    GaussianFourierFeatures,
    MLPScoreNet,
    SinusoidalEmbedding,
    build_backbone,
    count_parameters,
)

SMALL_FILM = {"channels": 16, "blocks": 3, "kernel_size": 5, "cond_dim": 2, "film_hidden": 32,
              "time_embedding_dim": 16}  # fmt: skip


def test_default_film_net_has_the_seed_size() -> None:
    """Seed network: 20 kernel-7 convolutions of 64 channels + FiLM MLP, ~1.1 M parameters."""
    net = FiLMConvNet()
    assert 1.0e6 <= count_parameters(net) <= 1.2e6
    assert count_parameters(net) == 1_041_666
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv1d)]
    assert sum(c.kernel_size == (7,) for c in convs) == 20
    assert convs[0].in_channels == 2 and net.output.out_channels == 2


@pytest.mark.parametrize("n_points", [64, 100, 37])
@pytest.mark.parametrize("padding_mode", ["reflect", "zeros"])
def test_film_output_shape_equals_input_shape(n_points: int, padding_mode: str) -> None:
    torch.manual_seed(0)
    net = FiLMConvNet(**SMALL_FILM, padding_mode=padding_mode)
    x = torch.randn(3, 2, n_points)
    out = net(x, torch.rand(3), torch.randn(3, 2))
    assert out.shape == x.shape


def test_film_conditioning_changes_the_output() -> None:
    """Different conditions or times -> different outputs; identical inputs -> identical outputs."""
    torch.manual_seed(0)
    net = FiLMConvNet(**SMALL_FILM)
    x = torch.randn(1, 2, 32).expand(2, 2, 32)
    t = torch.full((2,), 0.4)
    same = net(x, t, torch.zeros(2, 2))
    torch.testing.assert_close(same[0], same[1])
    different = net(x, t, torch.tensor([[0.0, 0.0], [1.0, -1.0]]))
    # FiLM starts near the identity, so the effect is small but clearly above round-off
    assert (different[0] - different[1]).abs().max() > 1e-4
    other_time = net(x, torch.tensor([0.1, 0.9]), torch.zeros(2, 2))
    assert (other_time[0] - other_time[1]).abs().max() > 1e-4
    gamma, beta = net.film_parameters(t, torch.zeros(2, 2))
    assert gamma.shape == beta.shape == (2, 3, 16)
    assert (gamma - 1).abs().max() < 0.5  # FiLM starts near the identity


def test_film_rejects_bad_inputs() -> None:
    net = FiLMConvNet(**SMALL_FILM)
    with pytest.raises(ValueError, match="cond of shape"):
        net(torch.randn(2, 2, 16), torch.rand(2), None)
    with pytest.raises(ValueError, match=r"x of shape \(B, 2, N\)"):
        net(torch.randn(2, 3, 16), torch.rand(2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        FiLMConvNet(kernel_size=4)
    unconditional = FiLMConvNet(**{**SMALL_FILM, "cond_dim": 0})
    assert unconditional(torch.randn(2, 2, 16), torch.rand(2), None).shape == (2, 2, 16)


@pytest.mark.parametrize("shape", [(5, 6), (5, 1, 6), (5, 2, 3)])
def test_mlp_accepts_vectors_in_either_layout(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    net = MLPScoreNet(data_dim=6, cond_dim=1, hidden=16, depth=2)
    out = net(torch.randn(shape), torch.rand(5), torch.randn(5, 1))
    assert out.shape == shape
    with pytest.raises(ValueError, match="data_dim=6"):
        net(torch.randn(5, 7), torch.rand(5), torch.randn(5, 1))


def test_registry_builds_and_reports_errors() -> None:
    assert set(BACKBONES) == {"film", "mlp", "unet"}
    config = BackboneConfig("film", dict(SMALL_FILM))
    assert from_dict(BackboneConfig, to_dict(config)) == config
    assert isinstance(build_backbone(config), FiLMConvNet)
    assert isinstance(build_backbone({"name": "mlp", "options": {"data_dim": 4}}), MLPScoreNet)
    with pytest.raises(ConfigError, match="unknown backbone 'transformer'"):
        build_backbone(BackboneConfig("transformer"))
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['chanels'\]"):
        build_backbone(BackboneConfig("film", {"chanels": 8}))
    with pytest.raises(ConfigError, match="data_dim"):
        build_backbone(BackboneConfig("mlp"))


def test_embeddings_are_deterministic_and_bounded() -> None:
    t = torch.linspace(0.0, 1.0, 7)
    a, b = GaussianFourierFeatures(32, seed=3), GaussianFourierFeatures(32, seed=3)
    torch.testing.assert_close(a(t), b(t))
    assert a(t).shape == (7, 32) and a(t).abs().max() <= 1.0
    assert "frequencies" in a.state_dict() and count_parameters(a) == 0
    assert SinusoidalEmbedding(16)(t).shape == (7, 16)
    with pytest.raises(ValueError, match="even"):
        GaussianFourierFeatures(5)
