"""Training building blocks: config validation and YAML round trip, cosine schedule, EMA."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from scorepde.configuration import load_yaml, save_yaml
from scorepde.nets.registry import BackboneConfig
from scorepde.training.config import (
    TrainConfig,
    resolve_autocast_dtype,
    resolve_compile,
    resolve_device,
)
from scorepde.training.ema import EMA
from scorepde.training.model import ModelConfig, model_config_differences
from scorepde.training.schedule import build_cosine_scheduler, cosine_learning_rate


def test_train_config_yaml_round_trip(tmp_path):
    config = TrainConfig(epochs=7, batch_size=32, warmup_epochs=2, num_threads=1, ema_warmup=True)
    save_yaml(config, tmp_path / "train.yaml")
    assert load_yaml(TrainConfig, tmp_path / "train.yaml") == config


def test_model_config_yaml_round_trip(tmp_path):
    config = ModelConfig(
        backbone=BackboneConfig("film", {"channels": 8, "blocks": 2, "cond_dim": 3}),
        process={"name": "ve", "sigma_min": 0.01, "sigma_max": 20.0},
        sigma_data=None,
    )
    save_yaml(config, tmp_path / "model.yaml")
    loaded = load_yaml(ModelConfig, tmp_path / "model.yaml")
    assert loaded == config
    assert model_config_differences(loaded, config) == []
    other = ModelConfig(backbone=BackboneConfig("film", {"channels": 4}))
    assert any("channels" in d for d in model_config_differences(other, config))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": -1}, "epochs"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"min_learning_rate": 1.0}, "min_learning_rate"),
        ({"ema_decay": 1.0}, "ema_decay"),
        ({"warmup_epochs": 5, "epochs": 5}, "warmup_epochs"),
        ({"precision": "fp16"}, "precision"),
        ({"device": "tpu"}, "device"),
        ({"compile": "yes"}, "compile"),
        ({"grad_clip": math.nan}, "grad_clip"),
    ],
)
def test_train_config_rejects_bad_values(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_zero_epochs_export_the_untrained_network(tmp_path):
    """epochs = 0 is allowed: fit trains nothing, writes one checkpoint of the initial weights
    (so export and resume work) and a second fit resumes it without error."""
    from scorepde.training.checkpoint import latest_checkpoint
    from scorepde.training.model_config import build_score_model
    from scorepde.training.sources import TensorSource
    from scorepde.training.trainer import Trainer

    config = ModelConfig(
        backbone=BackboneConfig("mlp", {"hidden": 8, "depth": 1, "data_dim": 4, "cond_dim": 1})
    )
    torch.manual_seed(0)
    model = build_score_model(config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    source = TensorSource(torch.randn(16, 1, 4), torch.randn(16, 1))
    trainer = Trainer(model, TrainConfig(epochs=0, batch_size=4, device="cpu"), tmp_path)
    result = trainer.fit(source=source, progress=False)
    assert result.epochs_done == 0
    assert latest_checkpoint(tmp_path) is not None
    for key, value in trainer.averaged_model().state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    again = Trainer(
        build_score_model(config), TrainConfig(epochs=0, batch_size=4, device="cpu"), tmp_path
    )
    assert again.fit(source=source, progress=False).epochs_done == 0


def test_auto_settings_on_cpu():
    cpu = torch.device("cpu")
    assert resolve_autocast_dtype("auto", cpu) is None
    assert resolve_autocast_dtype("fp32", cpu) is None
    assert resolve_compile("auto", cpu) is False
    assert resolve_compile("on", cpu) is True
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if torch.cuda.is_available():
        assert resolve_compile("auto", torch.device("cuda")) is True


def test_cosine_schedule_endpoints_and_monotone_decay():
    kwargs = {"total_steps": 5000, "learning_rate": 2e-4, "min_learning_rate": 1e-6}
    assert cosine_learning_rate(0, **kwargs) == pytest.approx(2e-4, rel=1e-12)
    assert cosine_learning_rate(2500, **kwargs) == pytest.approx((2e-4 + 1e-6) / 2, rel=1e-12)
    assert cosine_learning_rate(5000, **kwargs) == pytest.approx(1e-6, rel=1e-12)
    rates = [cosine_learning_rate(s, **kwargs) for s in range(5000)]
    assert all(a >= b for a, b in itertools.pairwise(rates))


def test_cosine_schedule_warmup_and_scheduler_agree():
    kwargs = {
        "total_steps": 20,
        "learning_rate": 1e-2,
        "min_learning_rate": 1e-4,
        "warmup_steps": 4,
    }
    assert [cosine_learning_rate(s, **kwargs) for s in range(4)] == pytest.approx(
        [2.5e-3, 5e-3, 7.5e-3, 1e-2]
    )
    assert cosine_learning_rate(4, **kwargs) == pytest.approx(1e-2)
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1e-2)
    scheduler = build_cosine_scheduler(optimizer, **kwargs)
    used = []
    for _ in range(20):
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert used == pytest.approx([cosine_learning_rate(s, **kwargs) for s in range(20)], rel=1e-12)


def _linear() -> nn.Module:
    layer = nn.Linear(2, 1)
    layer.register_buffer("count", torch.zeros(()))
    return layer


def test_ema_matches_closed_form_average():
    model = _linear()
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, decay=0.9)
    values = [1.0, 2.0, 3.0]
    for value in values:
        with torch.no_grad():
            model.weight.fill_(value)
            model.count.add_(1)
        ema.update(model)
    expected = 0.0
    for value in values:
        expected = 0.9 * expected + 0.1 * value
    assert torch.allclose(ema.shadow["weight"], torch.full((1, 2), expected), atol=1e-6)
    assert float(ema.buffers["count"]) == 3.0  # buffers are copied, not averaged
    target = _linear()
    ema.copy_to(target)
    assert torch.allclose(target.weight, ema.shadow["weight"])
    assert float(target.count) == 3.0


def test_ema_warmup_decay_and_state_round_trip():
    model = _linear()
    ema = EMA(model, decay=0.999, warmup=True)
    decays = []
    for _ in range(3):
        decays.append(ema.current_decay())
        ema.update(model)
    assert decays == pytest.approx([1 / 10, 2 / 11, 3 / 12])
    other = EMA(_linear(), decay=0.999, warmup=True)
    other.load_state_dict(ema.state_dict())
    assert other.num_updates == 3
    assert torch.equal(other.shadow["weight"], ema.shadow["weight"])
    with pytest.raises(KeyError, match="parameter names differ"):
        EMA(nn.Linear(2, 1, bias=False), 0.9).load_state_dict(ema.state_dict())
