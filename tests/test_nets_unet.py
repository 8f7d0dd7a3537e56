"""UNet backbone: shapes on 1-D/2-D/3-D grids of any size, every conditioning part acts,
gradients reach every parameter, errors, the documented presets, a small overfit."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import torch

import scorepde.nets.unet as unet_module
from scorepde.conditioning import Conditioning
from scorepde.configuration import ConfigError, from_dict, to_dict
from scorepde.diffusion.losses import dsm_loss
from scorepde.diffusion.preconditioning import ScoreModel
from scorepde.diffusion.processes import VPProcess
from scorepde.nets import BackboneConfig, UNet, build_backbone, count_parameters

DOCS = Path(__file__).resolve().parents[1] / "docs" / "diffusion.md"
TINY = {"base_channels": 8, "channel_mults": [1, 2], "time_embedding_dim": 16, "norm_groups": 4}
CPU_PRESET: dict[str, object] = {}  # the constructor defaults
GPU_PRESET = {"base_channels": 128, "channel_mults": [1, 2, 2, 2], "num_res_blocks": 2,
              "attention": True, "attention_heads": 4, "dropout": 0.1,
              "time_embedding_dim": 128}  # fmt: skip


def _full(dims: int, **options: object) -> UNet:
    """A tiny U-Net using every conditioning part: 3 vector conditions, 1 field channel,
    4 labels."""
    return UNet(dims=dims, cond_dim=3, cond_channels=1, n_labels=4, **{**TINY, **options})


def _cond(batch: int, grid: tuple[int, ...], generator: torch.Generator) -> Conditioning:
    return Conditioning(
        vector=torch.randn(batch, 3, generator=generator),
        fields=torch.randn(batch, 1, *grid, generator=generator),
        labels=torch.randint(0, 4, (batch,), generator=generator),
    )


@pytest.mark.parametrize(
    "grid",
    [(32,), (37,), (5,), (16, 16), (33, 29), (8, 5)],
)
def test_output_has_the_input_shape_on_any_grid(grid: tuple[int, ...]) -> None:
    """Odd and non-power-of-two sizes are padded and cropped back; 1-D and 2-D."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    net = _full(len(grid), attention=True, attention_heads=2)
    x = torch.randn(3, 2, *grid, generator=generator)
    out = net(x, torch.rand(3, generator=generator), _cond(3, grid, generator))
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def test_three_dimensional_grid_and_avgpool() -> None:
    torch.manual_seed(0)
    net = UNet(dims=3, downsample="avgpool", grid_padding="reflect", **TINY)
    x = torch.randn(2, 2, 6, 5, 4)
    assert net(x, torch.rand(2), None).shape == x.shape


def test_padding_does_not_leak_between_samples_and_crop_is_consistent() -> None:
    """Each sample's output depends only on that sample (no batch mixing): a batch of two
    equals the two samples run alone, on an odd 2-D grid that needs padding."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(2)
    net = _full(2).eval()
    x = torch.randn(2, 2, 11, 7, generator=generator)
    t = torch.rand(2, generator=generator)
    cond = _cond(2, (11, 7), generator)
    both = net(x, t, cond)
    for i in range(2):
        alone = net(x[i : i + 1], t[i : i + 1], cond[i : i + 1])
        torch.testing.assert_close(both[i : i + 1], alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dims", [1, 2])
def test_every_conditioning_part_changes_the_output(dims: int) -> None:
    """Changing only the time, the vector, the field or the label of one sample changes that
    sample's output by clearly more than round-off; the same inputs give the same output."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(3)
    grid = (24,) if dims == 1 else (12, 10)
    net = _full(dims).eval()
    x = torch.randn(1, 2, *grid, generator=generator).expand(2, 2, *grid)
    t = torch.full((2,), 0.4)
    base = Conditioning(
        vector=torch.zeros(2, 3), fields=torch.zeros(2, 1, *grid), labels=torch.zeros(2).long()
    )
    same = net(x, t, base)
    torch.testing.assert_close(same[0], same[1])
    variants = {
        "time": (torch.tensor([0.4, 0.9]), base),
        "vector": (
            t,
            Conditioning(torch.tensor([[0.0] * 3, [1.0, -1.0, 0.5]]), base.fields, base.labels),
        ),
        "fields": (
            t,
            Conditioning(
                base.vector,
                torch.stack([base.fields[0], torch.randn(1, *grid, generator=generator)]),
                base.labels,
            ),
        ),
        "labels": (t, Conditioning(base.vector, base.fields, torch.tensor([0, 3]))),
    }
    for name, (times, cond) in variants.items():
        out = net(x, times, cond)
        torch.testing.assert_close(out[0], same[0], msg=f"{name}: row 0 must not change")
        change = (out[1] - out[0]).abs().max()
        assert change > 1e-4 * same.abs().max(), f"{name} does not change the output ({change})"


def test_field_conditions_on_another_grid_are_interpolated() -> None:
    """Fields on a coarser grid equal the same fields interpolated beforehand (bilinear,
    align_corners=True); a linear ramp is reproduced exactly by the interpolation."""
    torch.manual_seed(0)
    net = UNet(dims=2, cond_channels=1, **TINY).eval()
    x = torch.randn(2, 2, 9, 13)
    t = torch.rand(2)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 5), torch.linspace(0, 1, 7), indexing="ij")
    coarse = (2 * xx + yy).expand(2, 1, 5, 7)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 9), torch.linspace(0, 1, 13), indexing="ij")
    fine = (2 * xx + yy).expand(2, 1, 9, 13)
    torch.testing.assert_close(
        net(x, t, Conditioning(fields=coarse)), net(x, t, Conditioning(fields=fine)),
        rtol=1e-5, atol=1e-5,
    )  # fmt: skip


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(4)
    net = _full(2, attention=True, attention_heads=2)
    labels = torch.arange(4)  # every label row is used
    cond = _cond(4, (10, 9), generator)
    cond = Conditioning(cond.vector, cond.fields, labels)
    out = net(torch.randn(4, 2, 10, 9, generator=generator), torch.rand(4), cond)
    out.square().mean().backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().max() > 0, f"{name} gets no gradient"


def test_plain_tensor_equals_vector_conditioning() -> None:
    torch.manual_seed(0)
    net = UNet(dims=1, cond_dim=2, **TINY)
    x, t, c = torch.randn(3, 2, 20), torch.rand(3), torch.randn(3, 2)
    torch.testing.assert_close(net(x, t, c), net(x, t, Conditioning(vector=c)))


def test_errors_name_the_problem() -> None:
    net = _full(2)
    grid = (8, 8)
    generator = torch.Generator().manual_seed(5)
    x, t, cond = torch.randn(2, 2, *grid), torch.rand(2), _cond(2, grid, generator)
    with pytest.raises(ValueError, match=r"x of shape \(B, 2, S0, S1\).*got \(2, 3, 8, 8\)"):
        net(torch.randn(2, 3, *grid), t, cond)
    with pytest.raises(ValueError, match=r"got \(2, 2, 8\)"):
        net(torch.randn(2, 2, 8), t, cond)
    with pytest.raises(ValueError, match="cond of shape"):
        net(x, t, Conditioning(fields=cond.fields, labels=cond.labels))
    with pytest.raises(ValueError, match=r"cond_channels=1.*no fields"):
        net(x, t, Conditioning(vector=cond.vector, labels=cond.labels))
    with pytest.raises(ValueError, match=r"n_labels=4.*none"):
        net(x, t, Conditioning(vector=cond.vector, fields=cond.fields))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        net(x, t, Conditioning(cond.vector, cond.fields, torch.tensor([0, 4])))
    with pytest.raises(ValueError, match="have 2 channels; cond_channels=1"):
        net(x, t, Conditioning(cond.vector, torch.randn(2, 2, *grid), cond.labels))
    plain = UNet(dims=2, **TINY)
    with pytest.raises(ValueError, match="cond_dim=0 but received vector"):
        plain(x, t, torch.randn(2, 3))
    with pytest.raises(ValueError, match="without field conditions"):
        plain(x, t, Conditioning(fields=cond.fields))
    with pytest.raises(ValueError, match="without labels"):
        plain(x, t, Conditioning(labels=cond.labels))
    deep = UNet(dims=1, channel_mults=(1, 1, 1, 1))
    with pytest.raises(ValueError, match=r"axis 0 has 5 points.*at least 8"):
        deep(torch.randn(1, 2, 5), torch.rand(1), None)
    reflect = UNet(dims=1, channel_mults=(1, 1, 1), grid_padding="reflect")
    assert reflect(torch.randn(1, 2, 5), torch.rand(1), None).shape == (1, 2, 5)
    with pytest.raises(ValueError, match="dims = 4"):
        UNet(dims=4)
    with pytest.raises(ValueError, match="attention_heads = 3"):
        UNet(attention=True, attention_heads=3)
    with pytest.raises(ValueError, match="channel_mults"):
        UNet(channel_mults=[])


def test_yaml_friendly_config_builds_the_same_network() -> None:
    """Lists for tuples, through the registry and a YAML-style dict round trip."""
    config = BackboneConfig("unet", {**TINY, "dims": 1, "cond_dim": 2})
    assert from_dict(BackboneConfig, to_dict(config)) == config
    torch.manual_seed(0)
    a = build_backbone(config)
    torch.manual_seed(0)
    b = UNet(**{**TINY, "channel_mults": (1, 2), "dims": 1, "cond_dim": 2})
    assert isinstance(a, UNet) and a.channel_mults == (1, 2)
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(pa, pb, msg=name)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['levels'\]"):
        build_backbone(BackboneConfig("unet", {"levels": 3}))


@pytest.mark.parametrize("preset", ["cpu", "gpu"])
def test_documented_preset_parameter_counts(preset: str) -> None:
    """The counts in the module docstring and in docs/diffusion.md are the real ones
    (2 channels, 2 vector conditions, 2-D)."""
    options = CPU_PRESET if preset == "cpu" else GPU_PRESET
    count = count_parameters(UNet(in_channels=2, out_channels=2, dims=2, cond_dim=2, **options))
    text = f"**{count:,}**"
    assert text in (unet_module.__doc__ or ""), f"{preset}: {text} not in unet.py's docstring"
    assert text in DOCS.read_text(encoding="utf-8"), f"{preset}: {text} not in {DOCS.name}"
    documented = re.findall(r"\*\*([\d,]+)\*\* *\n? *parameters", unet_module.__doc__ or "")
    assert f"{count:,}" in documented


def test_tiny_overfit_reduces_the_dsm_loss() -> None:
    """100 Adam steps on one fixed batch (fixed times and noise) cut the DSM loss tenfold
    (it falls ~1000-fold in practice): the network, the embedding and the conditioning path
    train."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(6)
    backbone = UNet(dims=2, cond_dim=2, n_labels=2, **TINY)
    model = ScoreModel(backbone, VPProcess())
    x0 = torch.randn(8, 2, 8, 8, generator=generator)
    cond = Conditioning(vector=torch.randn(8, 2, generator=generator),
                        labels=torch.arange(8) % 2)  # fmt: skip
    t = torch.linspace(0.05, 0.95, 8)
    noise = torch.randn(x0.shape, generator=generator)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    start = time.perf_counter()

    def loss() -> torch.Tensor:
        return dsm_loss(model, x0, cond, t=t, noise=noise).mean()

    with torch.no_grad():
        initial = loss().item()
    for _ in range(100):
        optimiser.zero_grad()
        value = loss()
        value.backward()
        optimiser.step()
    with torch.no_grad():
        final = loss().item()
    assert final < 0.1 * initial, (initial, final)
    assert time.perf_counter() - start < 30.0  # < 10 s alone; margin for a loaded machine
