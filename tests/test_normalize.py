"""Normalisation has an exact inverse on numpy and torch."""

import numpy as np
import pytest
import torch

from deeplightmd.errors import ConfigError
from deeplightmd.normalize import Normalizer

NORM = Normalizer(ntl_mean=1.2, ntl_std=0.8, dmo_mean=tuple(np.linspace(0.05, 0.3, 7)),
                  dmo_std=tuple(np.linspace(0.02, 0.1, 7)), dem_mean=150.0, dem_std=80.0)


@pytest.mark.parametrize("name,shape", [("lr_ntl", (1, 4, 4)), ("hr_ntl", (2, 1, 8, 8)),
                                        ("dmo", (7, 8, 8)), ("dem", (1, 8, 8)), ("isp", (1, 8, 8))])
def test_roundtrip_numpy_and_torch(name, shape):
    rng = np.random.default_rng(0)
    x = rng.gamma(1.0, 20.0, size=shape).astype(np.float32)
    y = NORM.normalize(name, x)
    np.testing.assert_allclose(NORM.denormalize(name, y), x, rtol=1e-5, atol=1e-5)
    t = torch.from_numpy(x)
    yt = NORM.normalize(name, t)
    np.testing.assert_allclose(yt.numpy(), y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(NORM.denormalize(name, yt).numpy(), x, rtol=1e-5, atol=1e-5)


def test_ntl_is_log_space_and_dmo_per_band():
    x = np.full((1, 2, 2), np.e - 1, dtype=np.float64)
    np.testing.assert_allclose(NORM.normalize("hr_ntl", x), (1.0 - 1.2) / 0.8)
    d = np.ones((7, 1, 1))
    expected = (1 - np.array(NORM.dmo_mean)) / np.array(NORM.dmo_std)
    np.testing.assert_allclose(NORM.normalize("dmo", d)[:, 0, 0], expected)


def test_errors():
    with pytest.raises(ConfigError, match="no normalisation for modality 'ndvi'"):
        NORM.normalize("ndvi", np.zeros(3))
    with pytest.raises(ConfigError, match="std values must be finite and > 0"):
        Normalizer(ntl_std=0.0)
    assert Normalizer.from_dict(NORM.to_dict()) == NORM
