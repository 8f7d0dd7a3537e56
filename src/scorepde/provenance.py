"""What made a generated file: package version, git revision, time, host."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from pathlib import Path

from scorepde import __version__


def git_revision(path: str | Path | None = None) -> str:
    """The git commit of the source tree this package runs from, or ``"unknown"``.

    A ``+dirty`` suffix marks uncommitted changes.
    """
    here = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
        suffix = "+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else ""
        return rev.stdout.strip() + suffix
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance() -> dict[str, str]:
    """A flat record to store beside any generated artefact."""
    return {
        "package": "scorepde",
        "package_version": __version__,
        "git_revision": git_revision(),
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "host": platform.node(),
    }
