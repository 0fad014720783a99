"""Where things are: the project's root and config folder, and the folder a command was launched from."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = _SOURCE_ROOT / "conf"


def project_root() -> Path:
    """The source checkout holding this package (it has pyproject.toml), else the launch directory."""
    return _SOURCE_ROOT if (_SOURCE_ROOT / "pyproject.toml").is_file() else launch_dir()


def launch_dir() -> Path:
    """The directory the user launched from: Hydra's original cwd if Hydra is running, else cwd."""
    if "hydra" in sys.modules:
        from hydra.core.hydra_config import HydraConfig
        from hydra.utils import get_original_cwd

        if HydraConfig.initialized():
            try:
                return Path(get_original_cwd())
            except ValueError:  # composed without a run directory (compose API): cwd is unchanged
                pass
    return Path(os.getcwd())


def resolve_path(path: str | os.PathLike) -> Path:
    """Expand ``~`` and make ``path`` absolute against the launch directory."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else launch_dir() / p
