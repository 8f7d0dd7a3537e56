"""Physics layer: simulators in pure numpy/scipy (no torch).

- :mod:`~scorepde.physics.parameters`: :class:`BatteryParameters`, the model constants with units.
- :mod:`~scorepde.physics.random_fields`: exact Gaussian-process sampler and the porosity map.
- :mod:`~scorepde.physics.finite_volume`: batched vertex-centred finite volumes (Thomas solver).
- :mod:`~scorepde.physics.battery`: the porous-electrode solver (potential, concentration).
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
from scorepde.physics.parameters import BatteryParameters
from scorepde.physics.random_fields import (
    KERNELS,
    GaussianProcessSampler,
    latent_from_porosity,
    porosity_from_latent,
)

__all__ = [
    "KERNELS",
    "BatteryParameters",
    "BatterySolution",
    "GaussianProcessSampler",
    "assemble_diffusion_reaction",
    "boundary_fluxes",
    "control_volumes",
    "face_fluxes",
    "harmonic_face_mean",
    "latent_from_porosity",
    "porosity_from_latent",
    "reaction_current",
    "reference_solve_battery_scipy",
    "solve_battery",
    "solve_concentration",
    "solve_concentration_transient",
    "solve_diffusion_reaction",
    "solve_diffusion_reaction_transient",
    "solve_potential",
    "solve_tridiagonal",
]
