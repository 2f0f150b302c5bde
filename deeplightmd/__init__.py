"""deeplightmd: build, read and benchmark the DeepLightMD multi-modal nighttime-light dataset.

After Zhang et al., "DeepLight: Reconstructing High-Resolution Observations of Nighttime Light
With Multi-Modal Remote Sensing Data", IJCAI 2024 (arXiv:2402.15659).
"""

from deeplightmd._version import __version__

__all__ = ["__version__"]
