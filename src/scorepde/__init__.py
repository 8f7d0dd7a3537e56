"""scorepde: conditional score-based generative models for uncertain PDE solutions.

Layers (each imports only the ones listed before it):
``physics`` -> ``problems`` -> ``data`` -> ``diffusion`` -> ``nets`` -> ``sampling``
-> ``training`` -> ``evaluation`` -> ``inverse``; ``cli`` sits on top and nothing imports it.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
