"""The LR sensor model: aggregation, PSF energy, shift and radiometry."""

import numpy as np
import pytest

from deeplightmd.errors import ConfigError
from deeplightmd.sensor import SensorModel, block_mean, blur_and_shift, degrade, radiometric


def test_block_mean_is_area_average():
    x = np.arange(64, dtype=float).reshape(8, 8)
    out = block_mean(x, 4)
    assert out.shape == (2, 2)
    assert out[0, 0] == pytest.approx(x[:4, :4].mean())
    assert out.sum() * 16 == pytest.approx(x.sum())


def test_block_mean_rejects_non_multiple():
    with pytest.raises(ConfigError, match="not a multiple of ratio 8"):
        block_mean(np.zeros((9, 16)), 8)


def test_psf_conserves_energy_and_shift_moves_centroid():
    hr = np.zeros((128, 128))
    hr[60:68, 60:68] = 10.0
    model = SensorModel(shift=(0.5, -0.25))
    out = blur_and_shift(hr, model)
    assert out.sum() == pytest.approx(hr.sum(), rel=1e-3)
    yy, xx = np.mgrid[:128, :128]
    cx = (out * xx).sum() / out.sum() - (hr * xx).sum() / hr.sum()
    cy = (out * yy).sum() / out.sum() - (hr * yy).sum() / hr.sum()
    assert cx == pytest.approx(0.5 * 8, abs=0.05)
    assert cy == pytest.approx(-0.25 * 8, abs=0.05)


def test_radiometry_gain_offset_floor():
    model = SensorModel(gain=2.0, offset=1.0, floor=3.0)
    out = radiometric(np.array([0.0, 1.0, 2.0, 10.0]), model)
    np.testing.assert_allclose(out, [1.0, 1.0, 5.0, 21.0])


def test_degrade_is_deterministic_without_rng_and_noisy_with_it():
    rng = np.random.default_rng(0)
    hr = rng.gamma(1.0, 5.0, size=(64, 64))
    model = SensorModel()
    a, b = degrade(hr, model), degrade(hr, model)
    assert a.shape == (8, 8) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    noisy = degrade(hr, model, np.random.default_rng(1))
    assert not np.array_equal(a, noisy)
    assert np.abs(noisy - a).mean() < 1.0


def test_roundtrip_dict_and_unknown_key():
    model = SensorModel(gain=0.7, shift=(0.1, 0.2))
    assert SensorModel.from_dict(model.to_dict()) == model
    with pytest.raises(ConfigError, match="unknown sensor parameter"):
        SensorModel.from_dict({"gian": 1.0})
