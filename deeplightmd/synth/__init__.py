"""The synthetic multi-sensor world (``deeplightmd synth``); see ``docs/synthetic-world.md``."""

from deeplightmd.synth.config import PRESETS, WorldConfig, resolve_config
from deeplightmd.synth.world import generate_world

__all__ = ["PRESETS", "WorldConfig", "generate_world", "resolve_config"]
