"""deeplightmd: build, read and benchmark the DeepLightMD multi-modal nighttime-light dataset.

After Zhang et al., "DeepLight: Reconstructing High-Resolution Observations of Nighttime Light
With Multi-Modal Remote Sensing Data", IJCAI 2024 (arXiv:2402.15659).
"""

from __future__ import annotations

from typing import Any

from deeplightmd._version import __version__

#: top-level names imported on first use, so ``import deeplightmd`` stays light
_LAZY = {"open_store": "deeplightmd.access.open", "DeepLightDataset": "deeplightmd.access.dataset"}

__all__ = ["DeepLightDataset", "__version__", "open_store"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'deeplightmd' has no attribute {name!r}")
