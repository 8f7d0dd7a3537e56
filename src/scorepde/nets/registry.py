"""Backbone registry: an explicit dict of names to classes, a config dataclass to build one,
and :func:`complete_backbone`, which fills in the sizes that follow from the data.

Every backbone class has a classmethod ``options_from_spec(sample_shape, cond) -> dict``
giving the constructor options fixed by one sample's shape ``(C, *S)`` and the
:class:`~scorepde.conditioning.ConditioningSpec`; nothing outside ``nets/`` needs to know which
option of which backbone that is.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from scorepde.conditioning import ConditioningSpec
from scorepde.configuration import ConfigError
from scorepde.nets.film import FiLMConvNet
from scorepde.nets.mlp import MLPScoreNet
from scorepde.nets.unet import UNet

BACKBONES: dict[str, type[nn.Module]] = {"film": FiLMConvNet, "mlp": MLPScoreNet, "unet": UNet}


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


def complete_backbone(
    config: BackboneConfig, sample_shape: Sequence[int], cond: ConditioningSpec
) -> BackboneConfig:
    """A copy of ``config`` with the options that follow from the data filled in.

    ``sample_shape`` is one sample's shape in the model's space, ``(C, *S)``; ``cond`` the
    sizes of the conditioning. The backbone class's ``options_from_spec`` says which options
    these fix. An option the config leaves out is set to the data's value, except where that
    value is the constructor's default (e.g. ``n_labels = 0``), so configs stay as short as
    before. An option the config sets to a different value is a ``ConfigError`` naming the
    option, the value given and the value the data needs. ``config`` is not changed.
    """
    cls = _lookup(config.name)
    shape = tuple(int(s) for s in sample_shape)
    try:
        derived = cls.options_from_spec(shape, cond)  # type: ignore[attr-defined]
    except ValueError as error:
        raise ConfigError(f"backbone {config.name!r}: {error}") from error
    defaults = {
        name: p.default
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    options = copy.deepcopy(config.options)
    for name, value in derived.items():
        if name in options:
            given = options[name]
            if given != value:
                raise ConfigError(
                    f"model.backbone.options.{name} = {given!r} is not allowed: one sample in "
                    f"the model's space has shape {list(shape)} and the conditioning is "
                    f"{cond.to_dict()}, so for backbone {config.name!r} {name} must be "
                    f"{value!r} (or leave it out)"
                )
        elif name not in defaults or defaults[name] != value:
            options[name] = value
    return BackboneConfig(name=config.name, options=options)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``module``; buffers are not counted."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _lookup(name: str) -> type[nn.Module]:
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; allowed: {sorted(BACKBONES)}")
    return BACKBONES[name]
