"""Pretrained models shipped with the package: ``load_pretrained("battery")``.

Each model is an exported model folder (``model.safetensors``, ``model.yaml``,
``normaliser.json``, as written by ``ConditionalModel.save``) stored as package data under
``scorepde/pretrained/<name>/``, with a ``RECORD.md`` that says how it was made (command, data
seed, training) and how well it did (its evaluation table). The loader knows nothing about the
model inside: replacing the folder's files by another exported model is enough.

``PRETRAINED`` is the explicit registry: name -> one line describing the model.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the training layer imports torch; load it only when a model is loaded
    from scorepde.training.conditional import ConditionalModel

__all__ = ["PRETRAINED", "PretrainedError", "load_pretrained", "pretrained_path"]

#: Name -> description. The folder ``scorepde/pretrained/<name>/`` holds the model.
PRETRAINED: dict[str, str] = {
    "battery": "battery porosity -> (c, phi), conditioned on (U0, l, F_right); see RECORD.md",
}


class PretrainedError(ValueError):
    """An unknown pretrained name, or a shipped model folder that is incomplete."""


def pretrained_path(name: str) -> Path:
    """The folder of pretrained model ``name`` inside the installed package.

    Raises:
        PretrainedError: ``name`` is not in :data:`PRETRAINED` (the message lists them), or
            its folder lacks ``model.yaml`` (a broken installation).
    """
    if name not in PRETRAINED:
        raise PretrainedError(
            f"pretrained model {name!r} is not known; available: {sorted(PRETRAINED)}"
        )
    folder = Path(str(resources.files("scorepde.pretrained") / name))
    if not (folder / "model.yaml").is_file():
        raise PretrainedError(
            f"pretrained model {name!r}: {folder} has no model.yaml (was the package data "
            "installed? reinstall scorepde)"
        )
    return folder


def load_pretrained(name: str, *, map_location: str = "cpu") -> ConditionalModel:
    """Load pretrained model ``name`` (a key of :data:`PRETRAINED`) as a ``ConditionalModel``
    (``TrainedModel`` is the same class).

    ``model.sample(conditions, n, sampler=..., steps=...)`` then draws fields in physical
    units; ``model.metadata`` holds what was recorded at training time.
    """
    from scorepde.training.conditional import load_trained_model

    folder = pretrained_path(name)
    model = load_trained_model(folder, map_location=map_location)
    model.metadata["pretrained"] = {"name": name, "folder": str(folder)}
    return model
