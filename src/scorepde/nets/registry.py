"""Backbone registry: an explicit dict of names to classes, and a config dataclass to build one."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from scorepde.configuration import ConfigError
from scorepde.nets.film import FiLMConvNet
from scorepde.nets.mlp import MLPScoreNet

BACKBONES: dict[str, type[nn.Module]] = {"film": FiLMConvNet, "mlp": MLPScoreNet}


@dataclass
class BackboneConfig:
    """Which backbone and its constructor keyword arguments (round-trips through YAML)."""

    name: str = "film"
    options: dict[str, Any] = field(default_factory=dict)


def backbone_options(name: str) -> list[str]:
    """The constructor keyword arguments that backbone ``name`` accepts."""
    cls = _lookup(name)
    parameters = inspect.signature(cls.__init__).parameters
    return [p for p in parameters if p != "self"]


def build_backbone(config: BackboneConfig | dict[str, Any]) -> nn.Module:
    """Instantiate ``BACKBONES[config.name](**config.options)``, checking the option names."""
    if isinstance(config, dict):
        unknown = sorted(set(config) - {"name", "options"})
        if unknown:
            raise ConfigError(f"backbone config: unknown key(s) {unknown}; allowed: name, options")
        config = BackboneConfig(**config)
    cls = _lookup(config.name)
    allowed = backbone_options(config.name)
    unknown = sorted(set(config.options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"backbone {config.name!r}: unknown option(s) {unknown}; allowed: {sorted(allowed)}"
        )
    try:
        return cls(**config.options)
    except TypeError as error:  # e.g. a required option (mlp's data_dim) is missing
        raise ConfigError(f"backbone {config.name!r}: {error}") from error


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``module``; buffers are not counted."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _lookup(name: str) -> type[nn.Module]:
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; allowed: {sorted(BACKBONES)}")
    return BACKBONES[name]
