"""Airfields of the structured HR light (deeplightmd.synth.urbanlight): dark interiors and a
bright apron, one per settlement above the population threshold, at the built-up edge."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from deeplightmd.errors import ConfigError
from deeplightmd.synth.config import UrbanLightConfig
from deeplightmd.synth.urbanlight import _airfields


def _two_towns() -> SimpleNamespace:
    """A 2 M town (a cone of built-up density around (50, 50), radius 30 px) and a 0.5 M town."""
    rr, cc = np.indices((120, 120))
    big = np.clip(1.0 - np.hypot(rr - 50, cc - 50) / 30.0, 0.0, None)
    small = np.clip(1.0 - np.hypot(rr - 100, cc - 100) / 12.0, 0.0, None)
    owner = np.where(big > 0, 0, np.where(small > 0, 1, -1)).astype(np.int32)
    return SimpleNamespace(density=np.maximum(big, small).astype(np.float32), owner=owner,
                           population=np.array([2.0e6, 5.0e5]))


def test_one_airfield_per_large_town_dark_inside_with_a_bright_apron():
    towns = _two_towns()
    cfg = UrbanLightConfig(airfield_population=1.0e6, airfield_length_m=1200.0,
                           airfield_width_m=600.0, core_boost=0.5)
    factor = _airfields(towns, cfg, 60.0, np.random.default_rng(3))
    dark, apron = factor == np.float32(0.02), factor == np.float32(1.5)
    assert set(np.unique(factor)) == {np.float32(0.02), np.float32(1.0), np.float32(1.5)}
    # 20 x 10 px of 60 m; the apron is the outer quarter of the width on one side
    area = int(dark.sum() + apron.sum())
    assert 180 <= area <= 220, area
    assert 0.2 <= apron.sum() / area <= 0.32
    # centred at the edge of the big town's built-up land; the small town gets none
    rows, cols = np.nonzero(dark | apron)
    centre = (round(rows.mean()), round(cols.mean()))
    assert towns.owner[centre] == 0 and 0.2 <= towns.density[centre] <= 0.7
    assert not (dark | apron)[towns.owner == 1].any()
    # deterministic in the generator
    again = _airfields(towns, cfg, 60.0, np.random.default_rng(3))
    np.testing.assert_array_equal(factor, again)


def test_airfields_are_off_by_default_and_sizes_must_be_positive():
    assert UrbanLightConfig().airfield_population == 0.0
    assert not UrbanLightConfig().enabled and UrbanLightConfig(airfield_population=1.0).enabled
    with pytest.raises(ConfigError, match="airfield_width_m"):
        UrbanLightConfig(airfield_width_m=0.0)
    factor = _airfields(_two_towns(), UrbanLightConfig(airfield_population=1.0e7), 60.0,
                        np.random.default_rng(0))
    assert (factor == 1.0).all()
