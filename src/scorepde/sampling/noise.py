"""Per-sample random streams, so samples do not depend on the batch size used to draw them.

Sample ``i`` of a run with seed ``s`` draws all of its noise (the initial prior draw and every
step's noise, in order) from its own ``numpy.random.default_rng([s, i])``. Processing samples
7 or 50 at a time therefore gives the same sample ``i``, and sample ``i`` of ``n = 100`` is sample
``i`` of ``n = 1000``.

To keep the cost per step low, each sample's stream is read in blocks into a shared
``(B, L)`` buffer; since a numpy ``Generator`` produces the same normals whether asked for
``a + b`` values at once or ``a`` then ``b``, the block size changes nothing in the values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


class PerSampleNoise:
    """One independent normal stream per sample.

    Args:
        seed: non-negative run seed.
        indices: global indices of the samples in this batch, e.g. ``range(start, stop)``.
        buffer_elements: about how many float64 values to pre-draw per refill over the
            batch (memory ``8 * buffer_elements`` bytes); it does not change the values.
    """

    def __init__(
        self, seed: int, indices: Sequence[int] | range, *, buffer_elements: int = 1 << 21
    ) -> None:
        if seed < 0 or any(i < 0 for i in indices):
            raise ValueError(
                f"PerSampleNoise: seed and indices must be non-negative, got seed={seed}, "
                f"indices={list(indices)[:5]}..."
            )
        if len(indices) == 0:
            raise ValueError("PerSampleNoise: indices is empty")
        self.seed = seed
        self.indices = list(indices)
        self.generators = [np.random.default_rng([seed, i]) for i in self.indices]
        self.buffer_elements = buffer_elements
        self._buffer = np.empty((len(self.indices), 0))
        self._cursor = 0

    def __len__(self) -> int:
        return len(self.generators)

    def normal(
        self,
        shape: Sequence[int],
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Standard normals ``(B, *shape)``; row ``b`` continues sample ``b``'s stream."""
        shape = tuple(int(s) for s in shape)
        count = math.prod(shape)
        available = self._buffer.shape[1] - self._cursor
        if available < count:
            self._refill(count, available)
        values = self._buffer[:, self._cursor : self._cursor + count]
        self._cursor += count
        return torch.from_numpy(values.reshape(len(self), *shape)).to(device=device, dtype=dtype)

    def _refill(self, count: int, available: int) -> None:
        # read ahead at most 64 requests of this size, and about buffer_elements values in all
        block = max(count - available, min(self.buffer_elements // len(self), 64 * count))
        fresh = np.empty((len(self), available + block))
        fresh[:, :available] = self._buffer[:, self._cursor :]
        for row, generator in enumerate(self.generators):
            generator.standard_normal(out=fresh[row, available:])
        self._buffer = fresh
        self._cursor = 0
