"""scorepde: conditional score-based generative models for uncertain PDE solutions.

Layers (each imports only the ones listed before it):
``physics`` -> ``problems`` -> ``data`` -> ``diffusion`` -> ``nets`` -> ``sampling``
-> ``training`` -> ``evaluation`` -> ``inverse``; ``pretrained`` (models shipped as package
data, ``scorepde.load_pretrained("battery")``) sits on ``training``; ``pipeline``, ``recipes``
and the CLI sit on top and nothing imports the CLI. The helper modules ``fields``,
``conditioning``, ``tensor_utils``, ``fileio``, ``configuration``, ``provenance`` and
``plotting`` may be imported by any layer. ``tests/test_layering.py`` checks the order and
that no modules import each other in a cycle.

One model class serves forward and inverse problems
(``scorepde.training.conditional.ConditionalModel``) and one registry holds the samplers
(``scorepde.sampling.registry``).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_pretrained"]


def __getattr__(name: str) -> Any:
    """``scorepde.load_pretrained`` without importing torch at ``import scorepde``."""
    if name == "load_pretrained":
        from scorepde.pretrained import load_pretrained

        return load_pretrained
    raise AttributeError(f"module 'scorepde' has no attribute {name!r}")
