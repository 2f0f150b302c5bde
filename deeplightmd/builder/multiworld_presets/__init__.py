"""Packaged multi-world presets (``deeplightmd build --preset standard``; see multiworld.py)."""
