"""2-D linear elasticity on the unit square (plane strain, nearly incompressible), batched FEM.

The problem (quasi-static elastography of a compressed block)::

    -div sigma(u) = 0 in [0, 1]^2,   sigma = 2 mu eps(u) + lambda tr(eps(u)) I,
    eps(u) = (grad u + grad u^T) / 2,    lambda = 2 nu / (1 - 2 nu) * mu,

with the shear modulus ``mu(x)`` piecewise constant on an ``n x n`` grid of cells and a fixed
Poisson ratio ``nu`` (0.49 by default: nearly incompressible tissue), so ``lambda / mu`` is the
same everywhere. Boundary conditions: ``u_y = 0`` on the bottom edge ``y = 0``, ``u_y =
-compression`` on the top edge ``y = 1`` (a prescribed vertical displacement), no shear
traction on either (rollers), the sides ``x = 0, 1`` traction-free, and ``u_x = 0`` at one point
of the bottom edge, ``(x0, 0)`` with ``x0`` the node nearest ``1/2`` (``x0 = 1/2`` when the
number of elements per side is even, or for the quadratic elements), which removes the rigid
translation. Everything is dimensionless: lengths and displacements in units of the side,
``mu`` in units of a reference modulus. The displacement does not depend on the scale of
``mu`` (prescribed displacements, no applied force): ``u(c mu) = u(mu)`` for any ``c > 0``.

Analytic solution for a homogeneous ``mu`` (uniaxial strain ``eps_yy = -delta`` with free
sides: ``sigma_xx = 0`` gives ``eps_xx = nu / (1 - nu) delta`` in plane strain)::

    u_x = nu / (1 - nu) * delta * (x - x0),    u_y = -delta * y.

It is linear, so every element below reproduces it to round-off
(:func:`uniaxial_compression_displacement`).

Discretisation: scikit-fem (``skfem``) on a mesh aligned with the cells: ``refine x refine``
quadrilaterals per cell (``"Q1"``, ``"Q2"``, ``"Q1-sri"``) or each of those squares split into
two triangles (``"P1"``, ``"P2"``), so every element has one ``mu``. ``"Q1-sri"`` is Q1 with
selective reduced integration (the volumetric term ``lambda div u div v`` at the element's
midpoint, the shear term with the full rule), the classical remedy of volumetric locking;
``"Q2"`` (9-node) and ``"P2"`` do not lock at ``nu = 0.49`` either; ``"P1"`` and full-rule
``"Q1"`` do, increasingly as ``nu -> 1/2`` (measured in tests/physics/test_elasticity.py and
docs/elasticity.md).

Reuse between solves: the stiffness is linear in ``mu``, ``K(mu) = sum_c mu_c K_c`` with ``K_c``
the unit-modulus stiffness of cell ``c`` (``2 eps:eps + lambda/mu div div``, assembled once by
skfem). :class:`ElasticitySolver` keeps, for the unknowns that are not fixed (numbered as skfem
does or by reverse Cuthill-McKee, whichever gives the narrower band), the sparse map from ``mu``
to the LAPACK band storage of the condensed matrix and the sparse map from ``mu`` to the right-
hand side (the condensed prescribed displacement). A batch of moduli ``(B, n, n)`` then costs
two sparse matrix products ``(entries, n^2) @ (n^2, B)`` and one banded Cholesky solve per field
(``dpbsv``), no assembly.

Output: the displacement ``(u_x, u_y)`` at the **cell centres** ``((i + 1/2) / n, (j + 1/2) /
n)``, arrays ``[..., j, i]``: ``(B, 2, n, n)``, the grid of ``mu`` itself (the finite-element
solution evaluated there by skfem's probes: for Q1 with ``refine = 1`` the mean of the four
corner values).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import sparse
from scipy.linalg.lapack import dpbsv
from scipy.sparse.csgraph import reverse_cuthill_mckee
from scipy.sparse.linalg import splu
from skfem import (
    BilinearForm,
    CellBasis,
    ElementQuad1,
    ElementQuad2,
    ElementTriP1,
    ElementTriP2,
    ElementVector,
    MeshQuad,
    MeshTri,
)
from skfem.helpers import ddot, div, sym_grad

__all__ = [
    "ELEMENTS",
    "LINEAR_SOLVERS",
    "ElasticitySolver",
    "lame_ratio",
    "solve_elasticity",
    "uniaxial_compression_displacement",
]

#: Element families: name -> (mesh class, scalar element, volumetric term at the midpoint).
ELEMENTS: dict[str, tuple[type, type, bool]] = {
    "Q1": (MeshQuad, ElementQuad1, False),
    "Q1-sri": (MeshQuad, ElementQuad1, True),
    "Q2": (MeshQuad, ElementQuad2, False),
    "P1": (MeshTri, ElementTriP1, False),
    "P2": (MeshTri, ElementTriP2, False),
}

#: Linear solvers of :class:`ElasticitySolver` (``"auto"`` picks one by the element).
LINEAR_SOLVERS = ("auto", "band", "sparse")

#: Upper bound on the memory of one chunk of band matrices, bytes.
_CHUNK_BYTES = 32 * 2**20


@BilinearForm
def _shear_form(u, v, w):
    return 2.0 * ddot(sym_grad(u), sym_grad(v))


@BilinearForm
def _volumetric_form(u, v, w):
    return div(u) * div(v)


def lame_ratio(poisson_ratio: float) -> float:
    """``lambda / mu = 2 nu / (1 - 2 nu)`` (plane strain, ``-1 < nu < 1/2``)."""
    nu = _poisson(poisson_ratio)
    return 2.0 * nu / (1.0 - 2.0 * nu)


def _poisson(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ValueError(
            f"poisson_ratio = {value!r} is not allowed; expected a number in (-1, 0.5)"
        )
    number = float(value)
    if not (math.isfinite(number) and -1.0 < number < 0.5):
        raise ValueError(
            f"poisson_ratio = {value!r} is not allowed; expected a number in (-1, 0.5)"
        )
    return number


def _positive_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} = {value!r} is not allowed; expected an integer >= {minimum}")
    return int(value)


def _bandwidth(pattern: sparse.csr_matrix, order: np.ndarray) -> int:
    coo = pattern.tocoo()
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return int(np.abs(rank[coo.row] - rank[coo.col]).max()) if coo.nnz else 0


def _narrowest_order(pattern: sparse.csr_matrix) -> np.ndarray:
    """The numbering of the free dofs with the smaller half bandwidth: skfem's own (the
    tensor mesh's nodes run along a line of the mesh, so it is already banded) or reverse
    Cuthill-McKee (which wins for the quadratic elements)."""
    natural = np.arange(pattern.shape[0])
    rcm = np.asarray(reverse_cuthill_mckee(pattern, symmetric_mode=True), dtype=np.int64)
    return min((natural, rcm), key=lambda order: _bandwidth(pattern, order))


def uniaxial_compression_displacement(
    x: np.ndarray,
    y: np.ndarray,
    *,
    poisson_ratio: float = 0.49,
    compression: float = 0.01,
    x0: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``(u_x, u_y)`` at points ``(x, y)`` for a homogeneous modulus (any value).

    ``u_x = nu / (1 - nu) * compression * (x - x0)``, ``u_y = -compression * y``; plane strain,
    traction-free sides, ``u_x(x0, 0) = 0``. Shapes as ``x`` and ``y`` (broadcast); lengths in
    units of the side.
    """
    nu = _poisson(poisson_ratio)
    x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return nu / (1.0 - nu) * compression * (x - x0), -compression * y


class ElasticitySolver:
    """Plane-strain elasticity on the unit square for many shear-modulus fields (module doc).

    Args:
        n_cells: cells per side ``n`` of the modulus grid (``>= 2``; 32 on CPU, 64 finer).
        poisson_ratio: ``nu`` in ``(-1, 0.5)``, the same in every cell (default 0.49).
        compression: the prescribed downward displacement ``delta`` of the top edge, in units
            of the side (default 0.01: 1 % strain). The displacement is linear in it.
        element: one of :data:`ELEMENTS` (default ``"Q1-sri"``).
        refine: elements per cell per side (``>= 1``): the mesh has ``n * refine`` elements
            per side, ``mu`` is constant on each block of ``refine x refine``.
        linear_solver: ``"band"`` (LAPACK banded Cholesky; measured 4-5x faster than a sparse
            LU for Q1 at n = 32 and 64), ``"sparse"`` (SuperLU, for the wide bands of the
            quadratic elements on fine meshes) or ``"auto"`` (default: band for the linear
            elements, sparse for the quadratic ones).

    Attributes:
        centres: ``(n,)`` cell-centre coordinates ``(i + 1/2) / n`` (both axes).
        x0: the ``x`` of the bottom point where ``u_x = 0``.
        n_dofs: number of finite-element unknowns (both components, before condensation).
        bandwidth: half bandwidth of the condensed matrix (skfem's or reverse Cuthill-McKee
            numbering, the narrower).
        basis: the skfem ``CellBasis`` (vector element) of the solution.
    """

    def __init__(
        self,
        n_cells: int = 32,
        *,
        poisson_ratio: float = 0.49,
        compression: float = 0.01,
        element: str = "Q1-sri",
        refine: int = 1,
        linear_solver: str = "auto",
    ) -> None:
        if linear_solver not in LINEAR_SOLVERS:
            raise ValueError(
                f"linear_solver = {linear_solver!r} is not allowed; expected one of "
                f"{list(LINEAR_SOLVERS)}"
            )
        self.n_cells = _positive_int("n_cells", n_cells, 2)
        self.refine = _positive_int("refine", refine, 1)
        self.poisson_ratio = _poisson(poisson_ratio)
        if isinstance(compression, bool) or not isinstance(compression, int | float | np.floating):
            raise ValueError(f"compression = {compression!r} is not allowed; expected a number")
        if not math.isfinite(float(compression)):
            raise ValueError(f"compression = {compression!r} is not allowed; expected finite")
        self.compression = float(compression)
        if element not in ELEMENTS:
            raise ValueError(
                f"element = {element!r} is not allowed; expected one of {list(ELEMENTS)}"
            )
        self.element = element
        if linear_solver == "auto":
            linear_solver = "sparse" if element in ("Q2", "P2") else "band"
        self.linear_solver = linear_solver
        mesh_type, scalar_element, reduced = ELEMENTS[element]
        n_elements = self.n_cells * self.refine
        edges = np.linspace(0.0, 1.0, n_elements + 1)
        mesh = mesh_type.init_tensor(edges, edges)
        vector_element = ElementVector(scalar_element())
        basis = CellBasis(mesh, vector_element)
        self.basis = basis
        self.n_dofs = int(basis.N)

        # unit-modulus element matrices; entry k of the COO data belongs to element k % nt
        shear = _shear_form.elemental(basis)
        volume_basis = (
            CellBasis(mesh, vector_element, quadrature=(np.array([[0.5], [0.5]]), np.array([1.0])))
            if reduced
            else basis
        )
        volume = _volumetric_form.elemental(volume_basis)
        if not np.array_equal(shear.indices, volume.indices):  # same element dofs: cannot fail
            raise RuntimeError("shear and volumetric element matrices index different dofs")
        rows, cols = shear.indices
        values = shear.data + lame_ratio(self.poisson_ratio) * volume.data
        n_mesh_elements = mesh.t.shape[1]
        centroids = mesh.p[:, mesh.t].mean(axis=1)  # (2, nt)
        cell_i = np.minimum((centroids[0] * self.n_cells).astype(int), self.n_cells - 1)
        cell_j = np.minimum((centroids[1] * self.n_cells).astype(int), self.n_cells - 1)
        cell = (cell_j * self.n_cells + cell_i)[np.arange(values.size) % n_mesh_elements]

        # prescribed dofs: bottom u_y = 0, top u_y = -delta, u_x = 0 at (x0, 0)
        x_dofs, y_dofs = basis.split_indices()
        locations = basis.doflocs
        tol = 1e-12
        bottom_y = y_dofs[np.abs(locations[1, y_dofs]) < tol]
        top_y = y_dofs[np.abs(locations[1, y_dofs] - 1.0) < tol]
        bottom_x = x_dofs[np.abs(locations[1, x_dofs]) < tol]
        pin = int(bottom_x[np.argmin(np.abs(locations[0, bottom_x] - 0.5))])
        self.x0 = float(locations[0, pin])
        prescribed = np.zeros(self.n_dofs)
        prescribed[top_y] = -1.0  # times the compression
        fixed = np.zeros(self.n_dofs, dtype=bool)
        fixed[np.concatenate([bottom_y, top_y, [pin]])] = True
        self._prescribed_unit = prescribed
        free = np.flatnonzero(~fixed)
        n_free = free.size

        # reverse Cuthill-McKee numbering of the free dofs (pattern of K restricted to them)
        position = np.full(self.n_dofs, -1)
        position[free] = np.arange(n_free)
        both = (position[rows] >= 0) & (position[cols] >= 0)
        pattern = sparse.csr_matrix(
            (np.ones(int(both.sum())), (position[rows[both]], position[cols[both]])),
            shape=(n_free, n_free),
        )
        order = _narrowest_order(pattern)
        renumber = np.empty(n_free, dtype=np.int64)
        renumber[order] = np.arange(n_free)
        position[free] = renumber
        self._free = free[order]  # global dof of each unknown in the band numbering

        row_pos, col_pos = position[rows], position[cols]
        lower = (row_pos >= 0) & (col_pos >= 0) & (row_pos >= col_pos)
        offset = row_pos[lower] - col_pos[lower]
        self.bandwidth = int(offset.max())
        flat = offset * n_free + col_pos[lower]
        n_cells_total = self.n_cells**2
        # band entries = band_map @ mu, rows: LAPACK lower band storage ab[r - c, c], flattened
        self._band_map = sparse.csr_matrix(
            (values[lower], (flat, cell[lower])),
            shape=((self.bandwidth + 1) * n_free, n_cells_total),
        )
        # right-hand side = -K_free,fixed u_fixed = rhs_map @ mu (times the compression)
        coupling = (row_pos >= 0) & fixed[cols] & (prescribed[cols] != 0.0)
        self._rhs_map = sparse.csr_matrix(
            (-values[coupling] * prescribed[cols[coupling]], (row_pos[coupling], cell[coupling])),
            shape=(n_free, n_cells_total),
        )
        self._n_free = n_free
        # the same matrix as sparse triplets (linear_solver="sparse"): values * mu[cell]
        free_entries = (row_pos >= 0) & (col_pos >= 0)
        self._sparse_rows = row_pos[free_entries]
        self._sparse_cols = col_pos[free_entries]
        self._sparse_values = values[free_entries]
        self._sparse_cell = cell[free_entries]
        # reactions: (K u) at the prescribed u_y dofs of the top / bottom edge
        self._edge_entries = {}
        for edge, edge_dofs in (("top", top_y), ("bottom", bottom_y)):
            on_edge = np.isin(rows, edge_dofs)
            self._edge_entries[edge] = (values[on_edge], cols[on_edge], cell[on_edge])

        centres = (np.arange(self.n_cells) + 0.5) / self.n_cells
        centres.setflags(write=False)
        self.centres = centres
        points = np.stack([np.tile(centres, self.n_cells), np.repeat(centres, self.n_cells)])
        self._probes = sparse.csr_matrix(basis.probes(points))  # (2 n^2, n_dofs): u_x, then u_y

    # ------------------------------------------------------------------ checks

    def _check_mu(self, mu: np.ndarray) -> np.ndarray:
        array = np.asarray(mu, dtype=float)
        n = self.n_cells
        if array.ndim == 2:
            array = array[None]
        if array.ndim != 3 or array.shape[1:] != (n, n):
            raise ValueError(
                f"mu has shape {np.shape(mu)}; expected (B, {n}, {n}) or ({n}, {n}) (one shear "
                "modulus per cell, arrays [..., j, i])"
            )
        if not np.all(np.isfinite(array)) or not np.all(array > 0.0):
            bad = array[~(np.isfinite(array) & (array > 0.0))].ravel()[0]
            raise ValueError(f"mu contains {bad!r}; expected finite shear moduli > 0")
        return array

    # ------------------------------------------------------------------ solving

    def solve_dofs(self, mu: np.ndarray) -> np.ndarray:
        """Finite-element coefficient vectors for a batch of moduli.

        Args:
            mu: ``(B, n, n)`` (or ``(n, n)``) shear modulus per cell, ``> 0`` (any unit).

        Returns:
            ``(B, n_dofs)``: skfem's dof vector of the vector element (displacements in units
            of the side), prescribed values included; evaluate with :attr:`basis`.
        """
        mu = self._check_mu(mu)
        batch = mu.shape[0]
        weights = mu.reshape(batch, -1).T  # (n^2, B)
        rhs_all = (self._rhs_map @ weights).T * self.compression  # (B, n_free)
        n_free, width = self._n_free, self.bandwidth + 1
        solution = np.empty((batch, n_free))
        if self.linear_solver == "sparse":
            for index in range(batch):
                values = self._sparse_values * weights[self._sparse_cell, index]
                matrix = sparse.csc_matrix(
                    (values, (self._sparse_rows, self._sparse_cols)), shape=(n_free, n_free)
                )
                solution[index] = splu(matrix, permc_spec="MMD_AT_PLUS_A").solve(rhs_all[index])
            return self._with_prescribed(solution)
        chunk = max(1, _CHUNK_BYTES // (8 * width * n_free))
        for begin in range(0, batch, chunk):
            stop = min(batch, begin + chunk)
            bands = np.asarray(self._band_map @ weights[:, begin:stop])  # (width n_free, b)
            bands = bands.T.reshape(stop - begin, width, n_free)
            for offset in range(stop - begin):
                _, x, info = dpbsv(bands[offset], rhs_all[begin + offset], lower=1, overwrite_ab=1)
                if info != 0:  # cannot happen for mu > 0: the matrix is positive definite
                    raise np.linalg.LinAlgError(
                        f"dpbsv failed with info = {info} for field {begin + offset} of the batch"
                    )
                solution[begin + offset] = x
        return self._with_prescribed(solution)

    def _with_prescribed(self, solution: np.ndarray) -> np.ndarray:
        dofs = np.tile(self._prescribed_unit * self.compression, (solution.shape[0], 1))
        dofs[:, self._free] = solution
        return dofs

    def edge_force(self, mu: np.ndarray, dofs: np.ndarray, edge: str = "top") -> np.ndarray:
        """Total vertical force the loading plate (``"top"``) or the support (``"bottom"``)
        exerts on the block: ``(B,)``, the sum of ``(K(mu) u)`` over the edge's prescribed
        ``u_y`` dofs (the consistent nodal reactions), in units of ``mu``'s unit times the side
        (per unit depth). Negative on the top (it pushes down), the opposite on the bottom
        (equilibrium). For a homogeneous ``mu`` the top force is ``-2 mu delta / (1 - nu)``.
        Unlike the displacement it scales with ``mu``: a measured force fixes ``mu``'s scale.

        Args:
            mu: ``(B, n, n)`` (or ``(n, n)``) as given to :meth:`solve_dofs`.
            dofs: ``(B, n_dofs)``, :meth:`solve_dofs` of that ``mu``.
            edge: ``"top"`` or ``"bottom"``.
        """
        if edge not in self._edge_entries:
            raise ValueError(f"edge = {edge!r} is not allowed; expected 'top' or 'bottom'")
        mu = self._check_mu(mu)
        dofs = np.atleast_2d(np.asarray(dofs, dtype=float))
        if dofs.shape != (mu.shape[0], self.n_dofs):
            raise ValueError(
                f"dofs has shape {dofs.shape}; expected ({mu.shape[0]}, {self.n_dofs})"
            )
        values, cols, cell = self._edge_entries[edge]
        weights = mu.reshape(mu.shape[0], -1)[:, cell]  # (B, entries)
        return np.sum(weights * dofs[:, cols] * values, axis=1)

    def displacement_at_centres(self, dofs: np.ndarray) -> np.ndarray:
        """``(B, n_dofs)`` dof vectors -> ``(B, 2, n, n)`` ``(u_x, u_y)`` at the cell centres."""
        dofs = np.atleast_2d(np.asarray(dofs, dtype=float))
        if dofs.ndim != 2 or dofs.shape[1] != self.n_dofs:
            raise ValueError(f"dofs has shape {np.shape(dofs)}; expected (B, {self.n_dofs})")
        values = (self._probes @ dofs.T).T  # (B, 2 n^2)
        return values.reshape(dofs.shape[0], 2, self.n_cells, self.n_cells)

    def solve(self, mu: np.ndarray) -> np.ndarray:
        """Displacement for a batch of moduli.

        Args:
            mu: ``(B, n, n)`` (or ``(n, n)``) shear modulus per cell, ``> 0``, arrays
                ``[..., j, i]`` (any unit: only ratios matter).

        Returns:
            ``(B, 2, n, n)``: ``(u_x, u_y)`` at the cell centres, in units of the side.
        """
        return self.displacement_at_centres(self.solve_dofs(mu))

    def __repr__(self) -> str:
        return (
            f"ElasticitySolver(n_cells={self.n_cells}, element={self.element!r}, "
            f"refine={self.refine}, poisson_ratio={self.poisson_ratio}, "
            f"compression={self.compression})"
        )


def solve_elasticity(
    mu: np.ndarray,
    *,
    poisson_ratio: float = 0.49,
    compression: float = 0.01,
    element: str = "Q1-sri",
    refine: int = 1,
    linear_solver: str = "auto",
) -> np.ndarray:
    """One-off :meth:`ElasticitySolver.solve` for ``mu (B, n, n)`` -> ``(B, 2, n, n)``; build
    an :class:`ElasticitySolver` once to reuse its set-up over many calls."""
    array = np.asarray(mu, dtype=float)
    if array.ndim not in (2, 3) or array.shape[-1] != array.shape[-2]:
        raise ValueError(f"mu has shape {np.shape(mu)}; expected (B, n, n) or (n, n)")
    solver = ElasticitySolver(
        array.shape[-1],
        poisson_ratio=poisson_ratio,
        compression=compression,
        element=element,
        refine=refine,
        linear_solver=linear_solver,
    )
    return solver.solve(array)
