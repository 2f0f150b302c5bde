"""Packaged world-family YAMLs (read by :mod:`deeplightmd.synth.families`)."""
