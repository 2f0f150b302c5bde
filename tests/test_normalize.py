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


def test_negative_radiance_counts_as_zero_both_ways():
    for x in (np.array([[[-5.0, 0.0]]]), torch.tensor([[[-5.0, 0.0]]], dtype=torch.float64)):
        y = NORM.normalize("lr_ntl", x)
        np.testing.assert_allclose(np.asarray(y), (0.0 - 1.2) / 0.8)
        back = NORM.denormalize("hr_ntl", y - 10.0)  # far below log1p(0): clamped to 0
        assert np.asarray(back).tolist() == [[[0.0, 0.0]]]


def test_dem_and_isp_by_hand_and_dtypes_kept():
    x = np.array([[[230.0, 70.0]]], dtype=np.float32)
    np.testing.assert_allclose(NORM.normalize("dem", x), [[[1.0, -1.0]]])
    np.testing.assert_allclose(NORM.denormalize("dem", np.array([[[1.0]]])), [[[230.0]]])
    isp = np.array([[[0.0, 1.0]]])
    assert NORM.normalize("isp", isp) is isp and NORM.denormalize("isp", isp) is isp
    d = torch.ones((7, 2, 2), dtype=torch.float32)
    out = NORM.normalize("dmo", d)
    assert out.dtype == torch.float32 and out.shape == (7, 2, 2)
    np.testing.assert_allclose(out[:, 0, 0].numpy(),
                               (1 - np.array(NORM.dmo_mean)) / np.array(NORM.dmo_std), rtol=1e-6)
    np.testing.assert_allclose(NORM.denormalize("dmo", out).numpy(), d.numpy(), rtol=1e-6)
    assert NORM.normalize("dmo", np.ones((7, 1, 1), dtype=np.float32)).dtype == np.float32


@pytest.mark.parametrize("bad", [{"ntl_std": -1.0}, {"dem_std": np.inf}, {"dem_std": np.nan},
                                 {"dmo_std": (1.0,) * 6 + (0.0,)}])
def test_every_std_must_be_finite_and_positive(bad):
    with pytest.raises(ConfigError, match="normalisation std values must be finite and > 0"):
        Normalizer(**bad)


def test_stats_dict_round_trip_converts_to_floats():
    d = {"ntl_mean": 1, "ntl_std": 2, "dmo_mean": [0] * 7, "dmo_std": [1] * 7, "dem_mean": 3,
         "dem_std": 4}
    n = Normalizer.from_dict(d)
    assert n.to_dict() == {"ntl_mean": 1.0, "ntl_std": 2.0, "dmo_mean": [0.0] * 7,
                           "dmo_std": [1.0] * 7, "dem_mean": 3.0, "dem_std": 4.0}
    assert isinstance(n.ntl_mean, float) and isinstance(n.dmo_std, tuple)
    with pytest.raises(ConfigError, match="expected one of lr_ntl, hr_ntl, dmo, dem, isp"):
        n.denormalize("ndvi", np.zeros(3))


def test_torch_and_numpy_agree_exactly_in_float64():
    """The per-band statistics are used in the input's dtype: float64 in, float64 maths out."""
    x = np.random.default_rng(1).gamma(1.0, 0.1, size=(7, 3, 3))
    t = torch.from_numpy(x)
    y = NORM.normalize("dmo", x)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(NORM.normalize("dmo", t).numpy(), y)
    np.testing.assert_array_equal(NORM.denormalize("dmo", torch.from_numpy(y)).numpy(),
                                  NORM.denormalize("dmo", y))


def test_torch_in_torch_out():
    t = torch.full((1, 2, 2), 3.0)
    for name in ("hr_ntl", "dmo", "dem"):
        x = t.expand(7, 2, 2).clone() if name == "dmo" else t
        y = NORM.normalize(name, x)
        assert isinstance(y, torch.Tensor) and isinstance(NORM.denormalize(name, y), torch.Tensor)


EXTRA_STATS = {"ntl_mean": 1, "ntl_std": 2, "dmo_mean": [0] * 7, "dmo_std": [1] * 7,
               "dem_mean": 3, "dem_std": 4,
               "extra": {"population": {"normalization": "log1p", "mean": [2], "std": [0.5]},
                         "roads": {"normalization": "zscore", "mean": [1, 10], "std": [2, 4]},
                         "mask": {"normalization": "none", "mean": [0], "std": [1]}}}


def test_declared_layer_statistics_round_trip_and_are_used_by_hand():
    """``stats.extra`` (declared layers): read as floats, written back unchanged, and each
    layer normalised as its own ``normalization`` says with its own per-band statistics."""
    n = Normalizer.from_dict(EXTRA_STATS)
    assert n.extra == {"population": ("log1p", (2.0,), (0.5,)),
                       "roads": ("zscore", (1.0, 10.0), (2.0, 4.0)),
                       "mask": ("none", (0.0,), (1.0,))}
    assert n.to_dict()["extra"] == {
        "population": {"normalization": "log1p", "mean": [2.0], "std": [0.5]},
        "roads": {"normalization": "zscore", "mean": [1.0, 10.0], "std": [2.0, 4.0]},
        "mask": {"normalization": "none", "mean": [0.0], "std": [1.0]}}
    assert Normalizer.from_dict(n.to_dict()) == n
    assert [n.kind(k) for k in ("population", "roads", "mask")] == ["log1p", "zscore", "none"]
    pop = np.array([[[0.0, 3.0], [np.e - 1, 10.0]]])
    np.testing.assert_allclose(n.normalize("population", pop), (np.log1p(pop) - 2.0) / 0.5)
    roads = np.stack([np.full((2, 2), 5.0), np.full((2, 2), 18.0)])
    np.testing.assert_allclose(n.normalize("roads", roads),
                               np.stack([np.full((2, 2), 2.0), np.full((2, 2), 2.0)]))
    np.testing.assert_allclose(n.denormalize("roads", n.normalize("roads", roads)), roads)
    t = torch.from_numpy(roads)
    torch.testing.assert_close(n.normalize("roads", t), torch.full((2, 2, 2), 2.0,
                                                                   dtype=torch.float64))
    mask = np.array([[[0.0, 1.0]]])
    assert n.normalize("mask", mask) is mask


def test_with_bands_reorders_and_fills_missing_bands_by_hand():
    """A DMO with other bands: each wanted band takes its own statistics, a missing band mean 0
    and std 1 (its zero fill stays 0 in normalised space); the same bands give the same object."""
    n = Normalizer(dmo_mean=(0.1, 0.2, 0.3), dmo_std=(1.5, 2.5, 3.5))
    assert n.with_bands(("a", "b", "c"), ("a", "b", "c")) is n
    moved = n.with_bands(("a", "b", "c"), ("c", "x", "a"))
    assert moved.dmo_mean == (0.3, 0.0, 0.1) and moved.dmo_std == (3.5, 1.0, 1.5)
    assert (moved.ntl_mean, moved.dem_std) == (n.ntl_mean, n.dem_std)
    assert n.with_bands(("a", "b", "c"), ("b",)).dmo_mean == (0.2,)


def test_normalisation_keeps_the_autograd_graph():
    """Methods convert network outputs with the normaliser (e.g. mass-conserving heads), so
    both directions stay differentiable torch operations."""
    for name in ("hr_ntl", "dmo", "dem"):
        x = torch.full((7 if name == "dmo" else 1, 2, 2), 0.5, requires_grad=True)
        y = NORM.normalize(name, x)
        back = NORM.denormalize(name, y)
        back.sum().backward()
        assert isinstance(y, torch.Tensor) and y.requires_grad
        torch.testing.assert_close(x.grad, torch.ones_like(x))


def test_per_band_statistics_live_on_the_input_device():
    """Per-band statistics are made on the input's device (a CUDA batch gets CUDA statistics);
    checked without a GPU on PyTorch's ``meta`` device, which refuses mixing devices."""
    x = torch.empty(7, 2, 2, device="meta")
    assert NORM.normalize("dmo", x).device.type == "meta"
    assert NORM.denormalize("dmo", x).device.type == "meta"
