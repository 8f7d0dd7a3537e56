"""Data layer: campaigns (design -> simulator -> HDF5), the schema, normalisation, datasets.

Importing ``scorepde.data`` does not import torch; ``scorepde.data.datasets`` does.
"""

from __future__ import annotations

from scorepde.data.campaign import (
    SPLITS,
    CampaignError,
    SimulationConfig,
    condition_seed,
    config_from_attributes,
    design_seed,
    parts_folder,
    problem_from_config,
    simulate_campaign,
)
from scorepde.data.design import DESIGNS, design_conditions
from scorepde.data.normalisation import (
    ConditionalNormaliser,
    ConditionEncoder,
    FieldNormaliser,
    NormalisationError,
    SubspaceNormaliser,
    load_normaliser,
)
from scorepde.data.schema import (
    SCHEMA,
    DatasetError,
    FieldDataset,
    group_by_condition,
    read_attributes,
    read_dataset,
    write_dataset,
)

__all__ = [
    "DESIGNS",
    "SCHEMA",
    "SPLITS",
    "CampaignError",
    "ConditionEncoder",
    "ConditionalNormaliser",
    "DatasetError",
    "FieldDataset",
    "FieldNormaliser",
    "NormalisationError",
    "SimulationConfig",
    "SubspaceNormaliser",
    "condition_seed",
    "config_from_attributes",
    "design_conditions",
    "design_seed",
    "group_by_condition",
    "load_normaliser",
    "parts_folder",
    "problem_from_config",
    "read_attributes",
    "read_dataset",
    "simulate_campaign",
    "write_dataset",
]
