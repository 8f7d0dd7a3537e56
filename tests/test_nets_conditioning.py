"""The conditioning input of every backbone (vector, fields, labels), sizes derived from the
data (``options_from_spec``, ``complete_backbone``) and the unchanged original networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import scorepde
from scorepde.conditioning import Conditioning, ConditioningSpec
from scorepde.configuration import ConfigError
from scorepde.diffusion.preconditioning import ScoreModel
from scorepde.diffusion.processes import build_process
from scorepde.nets import (
    BACKBONES,
    BackboneConfig,
    FiLMConvNet,
    MLPScoreNet,
    UNet,
    build_backbone,
    complete_backbone,
)
from scorepde.nets.inputs import resample_to_grid

SMALL_FILM = {"channels": 16, "blocks": 3, "kernel_size": 5, "cond_dim": 2, "film_hidden": 32,
              "time_embedding_dim": 16}  # fmt: skip
SMALL_MLP = {"data_dim": 12, "cond_dim": 2, "hidden": 32, "depth": 2, "time_embedding_dim": 16}


def _film_keys(blocks: int) -> set[str]:
    """The original FiLMConvNet's parameter and buffer names."""
    keys = {f"convs.{i}.{p}" for i in range(2 * blocks) for p in ("weight", "bias")}
    keys |= {f"film.{i}.{p}" for i in (0, 2, 4, 6) for p in ("weight", "bias")}
    return keys | {"output.weight", "output.bias", "time_embedding.frequencies"}


def test_pretrained_battery_model_samples_as_recorded() -> None:
    """The shipped model (an MLP on subspace coefficients, U0 pinned under the declared
    invariance) loads and samples the values recorded when it was shipped (5 fields, ode_dpm2m,
    9 steps, seed 0), and any U0 gives the same samples. A change anywhere on the sampling path
    (normalisers, pinning, network, sampler) shows up here. Tolerance 1e-6 relative: the values
    are this machine's; the margin allows another BLAS."""
    model = scorepde.load_pretrained("battery")
    fields = model.sample([0.0, 0.1, 25.0], 5, sampler="ode_dpm2m", steps=9, seed=0)
    means = [[1.844816193777e03, -2.050011415167e-03], [1.922117403370e03, -1.928496797790e-03],
             [1.978365574953e03, -2.196068060404e-03], [1.858656529884e03, -2.209249588032e-03],
             [1.892924532186e03, -1.951525630651e-03]]  # fmt: skip
    at_37 = [[2.109686498134e03, -7.770243875105e-04], [2.167611088179e03, -7.436106888693e-04],
             [2.244895448828e03, -9.048347145518e-04], [2.139100880694e03, -8.555632420556e-04],
             [2.144175559151e03, -7.418202083742e-04]]  # fmt: skip
    np.testing.assert_allclose(fields.mean(axis=2), means, rtol=1e-6)
    np.testing.assert_allclose(fields[:, :, 37], at_37, rtol=1e-6)
    shifted = model.sample([0.4, 0.1, 25.0], 5, sampler="ode_dpm2m", steps=9, seed=0)
    np.testing.assert_array_equal(shifted, fields)


def test_options_off_build_the_original_networks() -> None:
    """Without the new options no module is added (same names); the new modules come after
    the original ones, so the convolutions of a FiLM net with labels start identical."""
    assert set(FiLMConvNet(**SMALL_FILM).state_dict()) == _film_keys(3)
    mlp = MLPScoreNet(**SMALL_MLP)
    assert not any("label" in key for key in mlp.state_dict())
    torch.manual_seed(0)
    plain = FiLMConvNet(**SMALL_FILM).state_dict()
    torch.manual_seed(0)
    labelled = FiLMConvNet(**SMALL_FILM, n_labels=3).state_dict()
    assert set(labelled) == _film_keys(3) | {"label_embedding.weight"}
    for key in plain:
        if key.startswith(("convs.", "output.")):
            torch.testing.assert_close(plain[key], labelled[key], msg=key)


def _changes(
    net: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, a: Conditioning, b: Conditioning
) -> float:
    """Largest change of row 1 between conditionings ``a`` and ``b`` (row 0 must not change)."""
    out_a, out_b = net(x, t, a), net(x, t, b)
    torch.testing.assert_close(out_a[0], out_b[0])
    return float((out_a[1] - out_b[1]).detach().abs().max())


@pytest.mark.parametrize("backbone", ["film", "mlp"])
def test_labels_and_fields_change_the_output(backbone: str) -> None:
    """Each conditioning part changes the output of the row where it changes (by far more than
    round-off) and not the others."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    if backbone == "film":
        net = FiLMConvNet(**SMALL_FILM, n_labels=3, cond_channels=1)
        x = torch.randn(1, 2, 20, generator=generator).expand(2, 2, 20)
        fields = torch.zeros(2, 1, 20)
    else:
        net = MLPScoreNet(**SMALL_MLP, n_labels=3, cond_field_dim=10)
        for block in net.blocks:  # the modulation starts at zero by design; as after training:
            torch.nn.init.normal_(block.modulation.weight, std=0.1, generator=generator)
        x = torch.randn(1, 1, 12, generator=generator).expand(2, 1, 12)
        fields = torch.zeros(2, 2, 5)
    t = torch.full((2,), 0.3)
    vector = torch.zeros(2, 2)
    labels = torch.zeros(2, dtype=torch.long)
    base = Conditioning(vector, fields, labels)
    other_fields = fields.clone()
    other_fields[1] = torch.randn(fields.shape[1:], generator=generator)
    other_vector = torch.tensor([[0.0, 0.0], [0.7, -0.4]])
    scale = float(net(x, t, base).detach().abs().max())
    for name, cond in {
        "vector": Conditioning(other_vector, fields, labels),
        "fields": Conditioning(vector, other_fields, labels),
        "labels": Conditioning(vector, fields, torch.tensor([0, 2])),
    }.items():
        assert _changes(net, x, t, base, cond) > 1e-4 * scale, name


@pytest.mark.parametrize("backbone", ["film", "mlp", "unet"])
def test_plain_tensor_means_vector_conditions(backbone: str) -> None:
    torch.manual_seed(0)
    if backbone == "film":
        net, x = FiLMConvNet(**SMALL_FILM), torch.randn(3, 2, 16)
    elif backbone == "mlp":
        net, x = MLPScoreNet(**SMALL_MLP), torch.randn(3, 1, 12)
    else:
        net, x = UNet(dims=1, cond_dim=2, base_channels=8), torch.randn(3, 2, 16)
    t, c = torch.rand(3), torch.randn(3, 2)
    torch.testing.assert_close(net(x, t, c), net(x, t, Conditioning(vector=c)))


def test_film_fields_on_another_grid_are_interpolated() -> None:
    """Field conditions on 11 points equal the same (linear) profile given on the net's 21."""
    torch.manual_seed(0)
    net = FiLMConvNet(**{**SMALL_FILM, "cond_dim": 0}, cond_channels=1)
    x, t = torch.randn(2, 2, 21), torch.rand(2)
    coarse = torch.linspace(-1, 1, 11).expand(2, 1, 11)
    fine = torch.linspace(-1, 1, 21).expand(2, 1, 21)
    torch.testing.assert_close(resample_to_grid(coarse, (21,)), fine)
    torch.testing.assert_close(
        net(x, t, Conditioning(fields=coarse)), net(x, t, Conditioning(fields=fine))
    )


def test_missing_or_unexpected_parts_are_named() -> None:
    film = FiLMConvNet(**SMALL_FILM, n_labels=3, cond_channels=1)
    x, t = torch.randn(2, 2, 16), torch.rand(2)
    vector, fields, labels = torch.zeros(2, 2), torch.zeros(2, 1, 16), torch.zeros(2).long()
    with pytest.raises(ValueError, match=r"cond_channels=1\) but cond has no fields"):
        film(x, t, Conditioning(vector=vector, labels=labels))
    with pytest.raises(ValueError, match=r"n_labels=3\) but cond has none"):
        film(x, t, Conditioning(vector=vector, fields=fields))
    with pytest.raises(ValueError, match="cond of shape"):
        film(x, t, Conditioning(fields=fields, labels=labels))
    with pytest.raises(ValueError, match=r"have 3 channels; cond_channels=1 needs 1"):
        film(x, t, Conditioning(vector, torch.zeros(2, 3, 16), labels))
    with pytest.raises(ValueError, match="grid rank 2"):
        film(x, t, Conditioning(vector, torch.zeros(2, 1, 4, 4), labels))
    plain = FiLMConvNet(**SMALL_FILM)
    with pytest.raises(ValueError, match="without labels"):
        plain(x, t, Conditioning(vector=vector, labels=labels))
    with pytest.raises(ValueError, match=r"without field conditions \(cond_channels=0\)"):
        plain(x, t, Conditioning(vector=vector, fields=fields))
    mlp = MLPScoreNet(**SMALL_MLP, cond_field_dim=10)
    with pytest.raises(ValueError, match="16 numbers per sample; cond_field_dim=10 needs 10"):
        mlp(torch.randn(2, 12), t, Conditioning(vector=vector, fields=fields))
    with pytest.raises(ValueError, match=r"without field conditions \(cond_field_dim=0\)"):
        MLPScoreNet(**SMALL_MLP)(torch.randn(2, 12), t, Conditioning(vector=vector, fields=fields))
    with pytest.raises(ValueError, match="cond_dim=0 but received vector"):
        MLPScoreNet(data_dim=12)(torch.randn(2, 12), t, vector)


SPEC = ConditioningSpec(vector_dim=3, field_channels=1, field_shape=(33, 29), n_labels=4)


def test_options_from_spec() -> None:
    assert UNet.options_from_spec((2, 33, 29), SPEC) == {
        "in_channels": 2, "out_channels": 2, "dims": 2, "cond_dim": 3, "cond_channels": 1,
        "n_labels": 4,
    }  # fmt: skip
    film_spec = ConditioningSpec(vector_dim=3, field_channels=2, field_shape=(50,), n_labels=2)
    assert FiLMConvNet.options_from_spec((2, 100), film_spec) == {
        "in_channels": 2, "out_channels": 2, "cond_dim": 3, "n_labels": 2, "cond_channels": 2,
    }  # fmt: skip
    assert MLPScoreNet.options_from_spec((2, 33, 29), SPEC) == {
        "data_dim": 2 * 33 * 29, "cond_dim": 3, "n_labels": 4, "cond_field_dim": 33 * 29,
    }  # fmt: skip
    with pytest.raises(ValueError, match=r"1-D network.*got \(2, 33, 29\)"):
        FiLMConvNet.options_from_spec((2, 33, 29), ConditioningSpec())
    for name, cls in BACKBONES.items():  # every registered backbone derives its sizes
        assert callable(getattr(cls, "options_from_spec", None)), name


@pytest.mark.parametrize("name", ["film", "mlp", "unet"])
def test_complete_backbone_fills_in_what_the_data_fix(name: str) -> None:
    """The completed config builds a network that accepts the data's samples and
    conditioning; defaults are not written; the given config is not changed."""
    shape = (2, 24) if name in ("film", "mlp") else (2, 12, 10)
    grid = shape[1:]
    spec = ConditioningSpec(vector_dim=2, field_channels=1, field_shape=grid, n_labels=3)
    small = {"film": {"channels": 8, "blocks": 2, "film_hidden": 16}, "mlp": {"hidden": 16},
             "unet": {"base_channels": 8, "channel_mults": [1, 2]}}[name]  # fmt: skip
    config = BackboneConfig(name, dict(small))
    completed = complete_backbone(config, shape, spec)
    assert config.options == small
    assert completed.options["n_labels"] == 3 and completed.options["cond_dim"] == 2
    torch.manual_seed(0)
    net = build_backbone(completed)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4, *shape, generator=generator)
    cond = Conditioning(
        torch.randn(4, 2, generator=generator),
        torch.randn(4, 1, *grid, generator=generator),
        torch.tensor([0, 1, 2, 0]),
    )
    assert net(x, torch.rand(4, generator=generator), cond).shape == x.shape
    unconditional = complete_backbone(BackboneConfig(name, dict(small)), shape, ConditioningSpec())
    for option in ("n_labels", "cond_channels", "cond_field_dim"):
        assert option not in unconditional.options  # the defaults (0) are not written


def test_complete_backbone_refuses_contradictions() -> None:
    spec = ConditioningSpec(vector_dim=3)
    with pytest.raises(ConfigError, match=r"data_dim = 200 is not allowed.*data_dim must be 48"):
        complete_backbone(BackboneConfig("mlp", {"data_dim": 200}), (1, 48), spec)
    with pytest.raises(ConfigError, match=r"cond_dim = 4 is not allowed.*cond_dim must be 3"):
        complete_backbone(BackboneConfig("film", {"cond_dim": 4}), (2, 100), spec)
    with pytest.raises(ConfigError, match=r"dims = 1 is not allowed.*dims must be 2"):
        complete_backbone(BackboneConfig("unet", {"dims": 1}), (2, 32, 32), spec)
    with pytest.raises(ConfigError, match=r"backbone 'film'.*1-D network"):
        complete_backbone(BackboneConfig("film"), (2, 32, 32), spec)
    # consistent explicit values pass; the seed recipe's FiLM options are kept as they are
    seed = {"in_channels": 2, "out_channels": 2, "channels": 64, "blocks": 10, "kernel_size": 7,
            "cond_dim": 3}  # fmt: skip
    assert complete_backbone(BackboneConfig("film", seed), (2, 100), spec).options == seed


def test_mlp_shared_embedding_matches_row_by_row() -> None:
    """A batch with one noise level and one condition (the sampler's case) computes the
    embedding once; its output equals the row-by-row network's to rounding, and a batch whose
    rows differ in either still gets per-row embeddings."""
    torch.manual_seed(0)
    net = MLPScoreNet(**SMALL_MLP)
    for block in net.blocks:  # non-zero modulation so the embedding matters
        torch.nn.init.normal_(block.modulation.weight, std=0.3)
    x = torch.randn(64, 1, 12)
    t = torch.full((64,), 0.7)
    cond = torch.tensor([[0.2, -1.0]]).expand(64, 2)
    with torch.no_grad():
        shared = net(x, t, cond)
        rows = torch.cat([net(x[i : i + 1], t[i : i + 1], cond[i : i + 1]) for i in range(64)])
        np.testing.assert_allclose(shared.numpy(), rows.numpy(), rtol=1e-5, atol=1e-6)
        other = cond.clone()
        other[5] = torch.tensor([0.9, 0.4])
        mixed = net(x, t, other)
        assert not torch.allclose(mixed[5], shared[5], atol=1e-4)
        np.testing.assert_allclose(mixed[6:].numpy(), shared[6:].numpy(), rtol=1e-5, atol=1e-6)


def test_mlp_cond_to_input_feeds_the_conditions_to_the_input_layer() -> None:
    """With ``cond_to_input`` the input layer takes ``(x, cond)``: a fresh network (zero
    modulation) already responds to the condition, which the plain one cannot; off, the
    network is the original one (same parameters for the same seed)."""
    torch.manual_seed(0)
    plain = MLPScoreNet(**SMALL_MLP)
    torch.manual_seed(0)
    fed = MLPScoreNet(**SMALL_MLP, cond_to_input=True)
    assert fed.input.in_features == SMALL_MLP["data_dim"] + SMALL_MLP["cond_dim"]
    assert set(fed.state_dict()) == set(plain.state_dict())
    x, t = torch.randn(4, 1, 12), torch.full((4,), 0.5)
    a, b = torch.zeros(4, 2), torch.ones(4, 2)
    with torch.no_grad():
        assert torch.equal(plain(x, t, a), plain(x, t, b))  # zero modulation: blind at init
        assert not torch.allclose(fed(x, t, a), fed(x, t, b))
    torch.manual_seed(0)
    off = MLPScoreNet(**SMALL_MLP, cond_to_input=False)
    for key, value in plain.state_dict().items():
        assert torch.equal(value, off.state_dict()[key]), key


def test_mlp_zero_output_starts_as_the_exact_score_of_a_standard_gaussian() -> None:
    """With ``zero_output`` a fresh MLP under the EDM preconditioning (``sigma_data = 1``) is
    the exact score of ``N(0, I)`` data at every noise level, ``-x_t / (m_t^2 + sigma_t^2)``
    (the whitened Gaussian a whitened model space defines); every other weight is the
    original network's for the same seed, and the plain network is not that score."""
    process = build_process({"name": "vp", "beta_min": 0.1, "beta_max": 20.0})
    torch.manual_seed(0)
    plain = MLPScoreNet(**SMALL_MLP)
    torch.manual_seed(0)
    zero = MLPScoreNet(**SMALL_MLP, zero_output=True)
    changed = {k for k, v in zero.state_dict().items() if not torch.equal(v, plain.state_dict()[k])}
    assert changed == {"output.1.weight", "output.1.bias"}
    x, cond = torch.randn(6, 1, 12, dtype=torch.float64), torch.rand(6, 2, dtype=torch.float64)
    t = torch.tensor([1e-3, 0.01, 0.1, 0.4, 0.8, 1.0], dtype=torch.float64)
    exact = -x / (process.mean_coef(t) ** 2 + process.std(t) ** 2)[:, None, None]
    with torch.no_grad():
        for network, matches in ((zero, True), (plain, False)):
            score = ScoreModel(network.double(), process, sigma_data=1.0)(x, t, cond)
            assert torch.allclose(score, exact, rtol=1e-10, atol=1e-12) is matches
