"""Laplace's equation on the unit square with Dirichlet data: the multi-fidelity "Poisson" case.

The benchmark of Li et al., "Infinite-fidelity coregionalization" (NeurIPS 2022), as the
multi-fidelity issue defines it: ``u_xx + u_yy = 0`` on ``[0, 1]^2``, a constant value on each
side (``g_left`` on ``x = 0``, ``g_right`` on ``x = 1``, ``g_bottom`` on ``y = 0``, ``g_top`` on
``y = 1``) and an interior value ``u_c`` held fixed on the central node (odd fidelity) or on the
central 2 x 2 nodes (even fidelity). Everything is dimensionless.

Grid: at fidelity ``n`` the unknowns are the ``n x n`` interior nodes of a uniform grid with
spacing ``h = 1 / (n + 1)``, at ``x_i = (i + 1) h`` and ``y_j = (j + 1) h`` (``i, j = 0..n-1``);
arrays are indexed ``[..., j, i]`` (``j`` the y index, ``i`` the x index). The output at a
fidelity includes the held central nodes (their value is ``u_c``).

Scheme: the 5-point stencil, ``4 u_P - u_E - u_W - u_N - u_S = 0`` at every free node, known
neighbours (boundary or held nodes) moved to the right-hand side. Second-order accurate for
smooth solutions and exact for harmonic polynomials of degree <= 3 (tests/physics/
test_multifidelity_solvers.py). The matrix depends only on the fidelity, never on the inputs:
it is factorised once per fidelity (sparse LU, cached) and a whole batch is solved with one
call on a ``(n_free, B)`` right-hand side.

Differences from the reference code (documented in docs/multifidelity.md): it builds its grid
with ``dx = 1 / (n - 1)`` while its unknowns sit at spacing ``1 / (n + 1)``, multiplies the
right-hand side by ``dx^2`` (so its raw fields shrink about fourfold per refinement; per-fidelity
standardisation hides that), and does not hold the central nodes: it adds ``u_c`` to their
neighbours' right-hand sides but still solves for them. Here the central nodes are held, as the
issue states, so the solution is exactly linear in the five inputs.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from scorepde.physics._checks import check_count

__all__ = [
    "POISSON_FIDELITIES",
    "POISSON_INPUT_BOUNDS",
    "POISSON_INPUT_NAMES",
    "poisson_boundary_frame",
    "poisson_central_mask",
    "poisson_extended",
    "poisson_nodes",
    "solve_laplace_2d",
    "solve_poisson_benchmark",
]

POISSON_INPUT_NAMES: tuple[str, ...] = ("g_left", "g_right", "g_bottom", "g_top", "u_c")
POISSON_INPUT_BOUNDS: tuple[tuple[float, float], ...] = ((0.1, 0.9),) * 5
POISSON_FIDELITIES: tuple[int, ...] = (8, 16, 32, 64)


def _check_fidelity(fidelity: int, minimum: int = 2) -> int:
    return check_count(fidelity, "fidelity", minimum)


def poisson_nodes(fidelity: int) -> np.ndarray:
    """The interior node coordinates ``(n,)`` along either axis: ``(i + 1) / (n + 1)``."""
    n = _check_fidelity(fidelity)
    return np.arange(1, n + 1) / (n + 1)


def poisson_central_mask(fidelity: int) -> np.ndarray:
    """``(n, n)`` bool: the held central node (odd ``n``) or 2 x 2 nodes (even ``n``)."""
    n = _check_fidelity(fidelity)
    mask = np.zeros((n, n), dtype=bool)
    if n % 2:
        mask[n // 2, n // 2] = True
    else:
        mask[n // 2 - 1 : n // 2 + 1, n // 2 - 1 : n // 2 + 1] = True
    return mask


@lru_cache(maxsize=32)
def _factorised_laplacian(n: int, held_bytes: bytes) -> tuple[object, np.ndarray]:
    """Sparse LU of the 5-point matrix on the free nodes, and the free nodes' flat indices."""
    held = np.frombuffer(held_bytes, dtype=bool).reshape(n, n)
    free = np.flatnonzero(~held.ravel())
    one_d = sp.diags([-np.ones(n - 1), 2.0 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1])
    eye = sp.identity(n)
    full = (sp.kron(eye, one_d) + sp.kron(one_d, eye)).tocsr()  # rows/cols: j * n + i
    matrix = full[free][:, free].tocsc()
    return splu(matrix), free


def solve_laplace_2d(frame: np.ndarray, held: np.ndarray | None = None) -> np.ndarray:
    """Solve the 5-point Laplace equation on the interior of a square grid, batched.

    Args:
        frame: ``(B, n + 2, n + 2)`` values on the full node grid (spacing ``1 / (n + 1)``,
            indexed ``[b, j, i]``): the outer ring holds the Dirichlet data (corners unused),
            interior entries where ``held`` is true hold the values kept fixed there; the other
            interior entries are ignored. ``(n + 2, n + 2)`` is taken as ``B = 1``.
        held: ``(n, n)`` bool, interior nodes whose value is given (None: none). At least one
            node must be free.

    Returns:
        ``(B, n, n)`` the interior node values (held nodes carry their given values).
    """
    array = np.asarray(frame, dtype=float)
    single = array.ndim == 2
    if single:
        array = array[None]
    if array.ndim != 3 or array.shape[1] != array.shape[2] or array.shape[1] < 3:
        raise ValueError(
            f"frame has shape {np.shape(frame)}; expected (B, n + 2, n + 2) with n >= 1"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError("frame contains non-finite values; expected finite numbers")
    n = array.shape[1] - 2
    held_mask = np.zeros((n, n), dtype=bool) if held is None else np.asarray(held, dtype=bool)
    if held_mask.shape != (n, n):
        raise ValueError(f"held has shape {np.shape(held)}; expected ({n}, {n}) for this frame")
    if held_mask.all():
        raise ValueError("held marks every interior node; at least one must be free")
    lu, free = _factorised_laplacian(n, np.ascontiguousarray(held_mask).tobytes())
    # Known values on the full grid (zero at free nodes); the right-hand side of a free node is
    # the sum of its four neighbours' known values.
    known = array.copy()
    interior = known[:, 1:-1, 1:-1]
    interior[:, ~held_mask] = 0.0
    rhs = (
        known[:, :-2, 1:-1] + known[:, 2:, 1:-1] + known[:, 1:-1, :-2] + known[:, 1:-1, 2:]
    ).reshape(array.shape[0], n * n)[:, free]
    solution = interior.reshape(array.shape[0], n * n)
    solution[:, free] = lu.solve(np.ascontiguousarray(rhs.T)).T
    out = solution.reshape(array.shape[0], n, n)
    return out[0] if single else out


def _check_inputs(inputs: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    array = np.asarray(inputs, dtype=float)
    if array.ndim != 2 or array.shape[1] != len(names):
        raise ValueError(
            f"inputs has shape {np.shape(inputs)}; expected (B, {len(names)}) with columns {names}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError("inputs contains non-finite values; expected finite numbers")
    return array


def poisson_boundary_frame(inputs: np.ndarray, fidelity: int) -> np.ndarray:
    """``(B, n + 2, n + 2)`` the known values: sides, held centre, corners the mean of the two
    sides that meet there (the corners are not used by the stencil; they matter only when the
    field is interpolated), zero at the free interior nodes.

    Args:
        inputs: ``(B, 5)`` columns ``POISSON_INPUT_NAMES``.
        fidelity: ``n``, the number of interior nodes per axis.
    """
    values = _check_inputs(inputs, POISSON_INPUT_NAMES)
    n = _check_fidelity(fidelity)
    left, right, bottom, top, centre = values.T
    frame = np.zeros((values.shape[0], n + 2, n + 2))
    frame[:, :, 0] = left[:, None]
    frame[:, :, -1] = right[:, None]
    frame[:, 0, :] = bottom[:, None]
    frame[:, -1, :] = top[:, None]
    frame[:, 0, 0] = 0.5 * (left + bottom)
    frame[:, 0, -1] = 0.5 * (right + bottom)
    frame[:, -1, 0] = 0.5 * (left + top)
    frame[:, -1, -1] = 0.5 * (right + top)
    frame[:, 1:-1, 1:-1][:, poisson_central_mask(n)] = centre[:, None]
    return frame


def solve_poisson_benchmark(inputs: np.ndarray, fidelity: int) -> np.ndarray:
    """The benchmark's output at one fidelity.

    Args:
        inputs: ``(B, 5)`` ``(g_left, g_right, g_bottom, g_top, u_c)``, the benchmark draws them
            from ``[0.1, 0.9]^5`` (any finite values are accepted).
        fidelity: ``n >= 2`` interior nodes per axis.

    Returns:
        ``(B, n, n)`` ``u`` at the interior nodes ``[b, j, i] = u(x_i, y_j)``, coordinates
        :func:`poisson_nodes` (dimensionless).
    """
    n = _check_fidelity(fidelity)
    return solve_laplace_2d(poisson_boundary_frame(inputs, n), poisson_central_mask(n))


def poisson_extended(
    outputs: np.ndarray, inputs: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """The outputs with the boundary ring added, for interpolation on physical coordinates.

    The finest grid's outer nodes lie outside a coarser grid's interior nodes (``1 / 65 <
    1 / 9``), so a coarse field is interpolated on its full grid, boundary included.

    Args:
        outputs: ``(B, n, n)`` from :func:`solve_poisson_benchmark`.
        inputs: ``(B, 5)`` the inputs that produced them.

    Returns:
        ``((y, x), values)``: the axes ``(n + 2,)`` each, ``linspace(0, 1, n + 2)``, and
        ``values`` ``(B, n + 2, n + 2)`` (corners: the mean of the two sides).
    """
    fields = np.asarray(outputs, dtype=float)
    if fields.ndim != 3 or fields.shape[1] != fields.shape[2]:
        raise ValueError(f"outputs has shape {np.shape(outputs)}; expected (B, n, n)")
    n = fields.shape[1]
    frame = poisson_boundary_frame(inputs, n)
    if frame.shape[0] != fields.shape[0]:
        raise ValueError(
            f"inputs has {frame.shape[0]} rows and outputs {fields.shape[0]}; expected equal"
        )
    frame[:, 1:-1, 1:-1] = fields
    axis = np.linspace(0.0, 1.0, n + 2)
    return (axis, axis), frame
