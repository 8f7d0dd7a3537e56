"""Physics layer: simulators in pure numpy/scipy (no torch).

- :mod:`~scorepde.physics.parameters`: :class:`BatteryParameters`, the model constants with units.
- :mod:`~scorepde.physics.random_fields`: exact Gaussian-process sampler and the porosity map.
- :mod:`~scorepde.physics.finite_volume`: batched vertex-centred finite volumes (Thomas solver).
- :mod:`~scorepde.physics.battery`: the porous-electrode solver (potential, concentration).
- :mod:`~scorepde.physics.darcy`: 2-D Darcy flow, cell-centred finite volumes (banded Cholesky).
- :mod:`~scorepde.physics.elasticity`: 2-D plane-strain elasticity, scikit-fem, batched solves.
- :mod:`~scorepde.physics.poisson2d`, :mod:`~scorepde.physics.heat1d`,
  :mod:`~scorepde.physics.burgers1d`: the three multi-fidelity benchmarks (Laplace with Dirichlet
  data, 1-D heat with Neumann data, 1-D viscous Burgers).
"""

from __future__ import annotations

from scorepde.physics.battery import (
    BatterySolution,
    reaction_current,
    reference_solve_battery_scipy,
    solve_battery,
    solve_concentration,
    solve_concentration_transient,
    solve_potential,
)
from scorepde.physics.burgers1d import (
    BURGERS_FIDELITIES,
    BURGERS_INPUT_BOUNDS,
    BURGERS_INPUT_NAMES,
    solve_burgers_1d,
    solve_burgers_benchmark,
)
from scorepde.physics.darcy import (
    darcy_face_fluxes,
    darcy_residual,
    darcy_transmissibilities,
    effective_permeability,
    inflow,
    outflow,
    solve_darcy,
)
from scorepde.physics.elasticity import (
    ElasticitySolver,
    solve_elasticity,
    uniaxial_compression_displacement,
)
from scorepde.physics.finite_volume import (
    assemble_diffusion_reaction,
    boundary_fluxes,
    control_volumes,
    face_fluxes,
    harmonic_face_mean,
    solve_diffusion_reaction,
    solve_diffusion_reaction_transient,
    solve_tridiagonal,
)
from scorepde.physics.heat1d import (
    HEAT_FIDELITIES,
    HEAT_INPUT_BOUNDS,
    HEAT_INPUT_NAMES,
    solve_heat_1d,
    solve_heat_benchmark,
)
from scorepde.physics.parameters import BatteryParameters
from scorepde.physics.poisson2d import (
    POISSON_FIDELITIES,
    POISSON_INPUT_BOUNDS,
    POISSON_INPUT_NAMES,
    solve_laplace_2d,
    solve_poisson_benchmark,
)
from scorepde.physics.random_fields import (
    KERNELS,
    GaussianProcessSampler,
    KroneckerGaussianProcessSampler,
    latent_from_porosity,
    porosity_from_latent,
)

__all__ = [
    "BURGERS_FIDELITIES",
    "BURGERS_INPUT_BOUNDS",
    "BURGERS_INPUT_NAMES",
    "HEAT_FIDELITIES",
    "HEAT_INPUT_BOUNDS",
    "HEAT_INPUT_NAMES",
    "KERNELS",
    "POISSON_FIDELITIES",
    "POISSON_INPUT_BOUNDS",
    "POISSON_INPUT_NAMES",
    "BatteryParameters",
    "BatterySolution",
    "ElasticitySolver",
    "GaussianProcessSampler",
    "KroneckerGaussianProcessSampler",
    "assemble_diffusion_reaction",
    "boundary_fluxes",
    "control_volumes",
    "darcy_face_fluxes",
    "darcy_residual",
    "darcy_transmissibilities",
    "effective_permeability",
    "face_fluxes",
    "harmonic_face_mean",
    "inflow",
    "latent_from_porosity",
    "outflow",
    "porosity_from_latent",
    "reaction_current",
    "reference_solve_battery_scipy",
    "solve_battery",
    "solve_burgers_1d",
    "solve_burgers_benchmark",
    "solve_concentration",
    "solve_concentration_transient",
    "solve_darcy",
    "solve_diffusion_reaction",
    "solve_diffusion_reaction_transient",
    "solve_elasticity",
    "solve_heat_1d",
    "solve_heat_benchmark",
    "solve_laplace_2d",
    "solve_poisson_benchmark",
    "solve_potential",
    "solve_tridiagonal",
    "uniaxial_compression_displacement",
]
