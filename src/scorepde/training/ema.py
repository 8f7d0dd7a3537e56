"""Exponential moving average (EMA) of a model's weights.

After every optimiser step ``shadow <- decay * shadow + (1 - decay) * weight`` for each floating
point parameter; buffers (e.g. normalisation statistics) are copied as they are. Samples are drawn
with the shadow weights, which average out the last ~``1 / (1 - decay)`` steps of SGD noise
(1000 steps for the seed's 0.999).

Optional warm-up (``warmup=True``): update ``k`` (0-based) uses
``min(decay, (1 + k) / (10 + k))``, so early averages are not dominated by the random
initialisation (0.1 at the first update, 0.5 after 8, 0.9 after 80, reaching 0.999 after ~9000).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


class EMA:
    """Shadow copies (fp32 or the parameter's dtype, same device) of a model's parameters.

    model: the module being trained; decay in [0, 1); warmup: see the module docstring.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, *, warmup: bool = False) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay!r}")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.num_updates = 0
        with torch.no_grad():
            self.shadow: dict[str, torch.Tensor] = {
                name: p.detach().clone() for name, p in model.named_parameters()
            }
            self.buffers: dict[str, torch.Tensor] = {
                name: b.detach().clone() for name, b in model.named_buffers()
            }

    def current_decay(self) -> float:
        """The decay the next :meth:`update` will use."""
        if not self.warmup:
            return self.decay
        k = self.num_updates
        return min(self.decay, (1.0 + k) / (10.0 + k))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the shadow weights towards ``model``'s current weights (one step)."""
        decay = self.current_decay()
        params = dict(model.named_parameters())
        if params.keys() != self.shadow.keys():
            raise KeyError(_key_mismatch("EMA.update", self.shadow.keys(), params.keys()))
        shadows = [self.shadow[name] for name in params]
        currents = [params[name].detach() for name in params]
        floating = [i for i, s in enumerate(shadows) if s.is_floating_point()]
        if floating:
            torch._foreach_lerp_(
                [shadows[i] for i in floating], [currents[i] for i in floating], 1.0 - decay
            )
        for i in set(range(len(shadows))) - set(floating):
            shadows[i].copy_(currents[i])
        for name, buffer in model.named_buffers():
            if name in self.buffers:
                self.buffers[name].copy_(buffer)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Overwrite ``model``'s parameters and buffers with the shadow values."""
        params = dict(model.named_parameters())
        if params.keys() != self.shadow.keys():
            raise KeyError(_key_mismatch("EMA.copy_to", self.shadow.keys(), params.keys()))
        for name, p in params.items():
            p.copy_(self.shadow[name])
        for name, buffer in model.named_buffers():
            if name in self.buffers:
                buffer.copy_(self.buffers[name])

    def averaged_state_dict(self) -> dict[str, torch.Tensor]:
        """Parameters and buffers under the model's ``state_dict`` names (shadow values)."""
        return {**self.shadow, **self.buffers}

    def state_dict(self) -> dict[str, Any]:
        """Everything to resume: decay settings, update count, shadow parameters and buffers."""
        return {
            "decay": self.decay,
            "warmup": self.warmup,
            "num_updates": self.num_updates,
            "shadow": dict(self.shadow),
            "buffers": dict(self.buffers),
        }

    @torch.no_grad()
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from :meth:`state_dict` (tensors copied in place, keys must match)."""
        for key in ("shadow", "num_updates"):
            if key not in state:
                raise KeyError(f"EMA state is missing {key!r}; has {sorted(state)}")
        if state["shadow"].keys() != self.shadow.keys():
            raise KeyError(
                _key_mismatch("EMA.load_state_dict", self.shadow.keys(), state["shadow"].keys())
            )
        for name, value in state["shadow"].items():
            self.shadow[name].copy_(value)
        for name, value in state.get("buffers", {}).items():
            if name in self.buffers:
                self.buffers[name].copy_(value)
        self.num_updates = int(state["num_updates"])
        self.decay = float(state.get("decay", self.decay))
        self.warmup = bool(state.get("warmup", self.warmup))


def _key_mismatch(where: str, expected: Any, received: Any) -> str:
    missing = sorted(set(expected) - set(received))
    extra = sorted(set(received) - set(expected))
    return f"{where}: parameter names differ; missing {missing[:5]}, unexpected {extra[:5]}"
