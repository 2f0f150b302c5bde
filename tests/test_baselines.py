"""Baselines: every registered baseline fits and predicts; kernels, calibration and checkpoints.

The data are a small in-memory world: HR radiance with urban structure, LR = the project's sensor
model applied to it, DMO/DEM/ISP correlated with the urban fraction, all normalised with a
:class:`Normalizer` fitted on the clips (no store needed).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from scipy import ndimage

from baselines._common import block_mean, resize_matrix, upsample
from baselines.calibration import export_hgb_trees, predict_trees
from baselines.multi_modality import guided_filter
from baselines.single_modality import window_partition, window_reverse
from benchmarks.method import FAMILIES, MethodContext, TorchMethod
from benchmarks.protocol import protocol_for_budget
from benchmarks.registry import METHODS
from benchmarks.training import validation_l1
from deeplightmd.errors import ConfigError
from deeplightmd.normalize import Normalizer
from deeplightmd.sensor import SensorModel, degrade

RATIO = 8
LR = 8  # LR pixels per side of a clip
HR = LR * RATIO

BASELINES = [name for name, cls in METHODS.items() if cls.__module__.startswith("baselines.")]


pytestmark = pytest.mark.usefixtures("one_thread")


def _clip(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One clip in physical units: HR radiance, LR (sensor model), DMO reflectance, DEM, ISP."""
    field = ndimage.gaussian_filter(rng.standard_normal((HR, HR)), 6.0)
    urban = 1.0 / (1.0 + np.exp(-(field / field.std() - 0.3) * 3.0))  # (0, 1)
    hr = 50.0 * urban**2 + 2.0 * rng.random((HR, HR)) * urban
    veg = 1.0 - urban
    base = np.array([0.10, 0.08, 0.09, 0.08, 0.30, 0.18, 0.10])[:, None, None]
    urb = np.array([0.12, 0.12, 0.13, 0.15, 0.20, 0.28, 0.24])[:, None, None]
    dmo = veg * base + urban * urb + 0.005 * rng.standard_normal((7, HR, HR))
    dem = (
        100.0
        + 30.0 * ndimage.gaussian_filter(rng.standard_normal((HR, HR)), 10.0) * 10
        - 20 * urban
    )
    lr = degrade(hr, SensorModel(ratio=RATIO))
    return {
        "lr_ntl": lr[None],
        "hr_ntl": hr[None],
        "dmo": dmo,
        "dem": dem[None],
        "isp": (urban > 0.5)[None].astype(np.float32),
    }


class InMemoryDataset(torch.utils.data.Dataset):
    """Sample dicts (normalised float32 tensors) per docs/architecture.md."""

    def __init__(self, clips: list[dict[str, np.ndarray]], normalizer: Normalizer) -> None:
        self.samples = [
            {
                k: torch.as_tensor(
                    normalizer.normalize(k, v.astype(np.float32)), dtype=torch.float32
                )
                for k, v in c.items()
            }
            for c in clips
        ]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return dict(self.samples[index])


@pytest.fixture(scope="module")
def world() -> tuple[InMemoryDataset, InMemoryDataset, MethodContext]:
    rng = np.random.default_rng(0)
    clips = [_clip(rng) for _ in range(10)]
    log_hr = np.log1p(np.stack([c["hr_ntl"] for c in clips]))
    dmo = np.stack([c["dmo"] for c in clips])
    dem = np.stack([c["dem"] for c in clips])
    norm = Normalizer(
        ntl_mean=float(log_hr.mean()),
        ntl_std=float(log_hr.std()),
        dmo_mean=tuple(dmo.mean(axis=(0, 2, 3)).tolist()),
        dmo_std=tuple(dmo.std(axis=(0, 2, 3)).tolist()),
        dem_mean=float(dem.mean()),
        dem_std=float(dem.std()),
    )
    context = MethodContext(ratio=RATIO, normalizer=norm)
    return InMemoryDataset(clips[:8], norm), InMemoryDataset(clips[8:], norm), context


def _batch(ds: InMemoryDataset, n: int = 2) -> dict[str, torch.Tensor]:
    return {k: torch.stack([ds[i][k] for i in range(n)]) for k in ds[0]}


def _tiny_protocol(steps: int = 2, **overrides):
    return protocol_for_budget("small", steps=steps, batch_size=4, val_every=steps, **overrides)


def _fitted(name: str, world, seed: int = 0, steps: int = 2):
    train, val, context = world
    method = METHODS.get(name)(MethodContext(context.ratio, context.normalizer, seed=seed))
    method.fit(train, val, _tiny_protocol(steps), progress=False)
    return method


# ------------------------------------------------------------------------------------------------
# the registry view


def test_at_least_ten_baselines_two_per_family():
    families = Counter(METHODS.get(n).family for n in BASELINES)
    assert len(BASELINES) >= 10
    for family in ("interpolation", "calibration", "single-modality", "multi-modality"):
        assert families[family] >= 2, family
    for name in BASELINES:
        cls = METHODS.get(name)
        assert cls.family in FAMILIES and cls.description and cls.citation, name
        assert set(cls.default_hparams("paper")) == set(cls.default_hparams("small")), name


@pytest.mark.parametrize("name", BASELINES)
def test_fit_predict_shapes_and_range(name, world):
    _, val, context = world
    method = _fitted(name, world)
    batch = {k: v for k, v in _batch(val).items() if k in (*method.inputs, "hr_ntl")}
    out = method.predict(batch)
    assert out.shape == (2, 1, HR, HR) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    radiance = context.normalizer.denormalize("hr_ntl", out)
    assert torch.isfinite(radiance).all() and (radiance >= 0).all()
    if not isinstance(method, TorchMethod):
        # non-network methods clamp in radiance space themselves: no value below radiance 0
        zero = float(context.normalizer.normalize("hr_ntl", torch.zeros(())))
        assert out.min() >= zero - 1e-5
    assert out.std() > 0


# ------------------------------------------------------------------------------------------------
# interpolation


@pytest.mark.parametrize(
    ("name", "pil_filter"),
    [
        ("bicubic", Image.Resampling.BICUBIC),
        ("lanczos", Image.Resampling.LANCZOS),
        ("bilinear", Image.Resampling.BILINEAR),
        ("nearest", Image.Resampling.NEAREST),
    ],
)
def test_interpolation_matches_pil(name, pil_filter, world):
    """Same kernels and border rule as PIL (float "F" images): equal at every pixel, edges too."""
    _, _, context = world
    rng = np.random.default_rng(3)
    lr = (rng.random((LR, LR + 3)) * 40.0).astype(np.float32)
    ref = np.asarray(Image.fromarray(lr, mode="F").resize(((LR + 3) * RATIO, HR), pil_filter))
    ref = np.clip(ref, 0, None)
    batch = {"lr_ntl": context.normalizer.normalize("lr_ntl", torch.from_numpy(lr))[None, None]}
    out = context.normalizer.denormalize("hr_ntl", METHODS.get(name)(context).predict(batch))[0, 0]
    np.testing.assert_allclose(out.numpy(), ref, rtol=2e-5, atol=2e-4)


def test_keys_kernel_values_and_partition_of_unity():
    w = resize_matrix(5, RATIO, "bicubic")
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
    # output pixel 20 samples x = 20.5/8 - 0.5 = 2.0625: taps at distances 1.0625, 0.0625, ...

    def keys(x: float) -> float:
        return (1.5 * x**3 - 2.5 * x**2 + 1) if x <= 1 else (-0.5 * x**3 + 2.5 * x**2 - 4 * x + 2)

    np.testing.assert_allclose(
        w[20, 1:5], [keys(1.0625), keys(0.0625), keys(0.9375), keys(1.9375)], atol=1e-12
    )
    # a linear ramp is reproduced exactly away from the borders (cubic convolution is 2nd order)
    ramp = torch.arange(6, dtype=torch.float64)[None, :].repeat(6, 1)
    up = upsample(ramp, RATIO, "bicubic")[RATIO * 2 : -RATIO * 2, RATIO * 2 : -RATIO * 2]
    np.testing.assert_allclose(
        up[0].numpy(), (np.arange(2 * RATIO, 4 * RATIO) + 0.5) / RATIO - 0.5, atol=1e-12
    )


def test_unknown_kernel_rejected():
    with pytest.raises(ConfigError, match="unknown interpolation kernel 'cubic'"):
        resize_matrix(4, 2, "cubic")


# ------------------------------------------------------------------------------------------------
# calibration


@pytest.mark.parametrize("name", ["downscale-gbrt", "downscale-ridge"])
def test_downscaling_reaggregates_to_lr(name, world):
    _, val, context = world
    method = _fitted(name, world)
    batch = _batch(val)
    out = context.normalizer.denormalize("hr_ntl", method.predict(batch).double())
    lr = context.normalizer.denormalize("lr_ntl", batch["lr_ntl"].double())
    np.testing.assert_allclose(block_mean(out, RATIO).numpy(), lr.numpy(), rtol=1e-4, atol=1e-4)
    # and it is not just LR replicated: structure inside the LR pixels comes from the covariates
    assert (
        out - torch.repeat_interleave(torch.repeat_interleave(lr, RATIO, -2), RATIO, -1)
    ).abs().max() > 0.1


def test_exported_trees_predict_like_sklearn():
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(1)
    x = rng.standard_normal((600, 5))
    x[::17, 2] = np.nan
    y = np.sin(x[:, 0]) + np.nan_to_num(x[:, 2]) ** 2 + 0.1 * rng.standard_normal(600)
    model = HistGradientBoostingRegressor(
        max_iter=20, max_leaf_nodes=15, early_stopping=False, random_state=0
    ).fit(x, y)
    ours = predict_trees(export_hgb_trees(model), torch.from_numpy(x))
    np.testing.assert_allclose(ours.numpy(), model.predict(x), rtol=0, atol=1e-10)


def test_downscaling_predict_before_fit_fails(world):
    _, val, context = world
    with pytest.raises(ConfigError, match="'downscale-ridge' is not fitted"):
        METHODS.get("downscale-ridge")(context).predict(_batch(val))


# ------------------------------------------------------------------------------------------------
# networks


def test_edsr_training_beats_untrained(world):
    train, _, context = world
    method = METHODS.get("edsr")(context)
    before = validation_l1(method, train)
    report = method.fit(train, None, _tiny_protocol(30, learning_rate=1e-3), progress=False)
    after = validation_l1(method, train)
    assert report["steps"] == 30
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize("name", [n for n in BASELINES if METHODS.get(n).trainable])
def test_checkpoint_round_trip(name, world, tmp_path):
    _, val, context = world
    method = _fitted(name, world, seed=0)
    path = tmp_path / f"{name}.safetensors"
    save_file(method.state_dict(), str(path))
    fresh = METHODS.get(name)(MethodContext(context.ratio, context.normalizer, seed=1))
    fresh.load_state_dict(load_file(str(path)))
    batch = _batch(val)
    assert torch.equal(method.predict(batch), fresh.predict(batch))
    assert method.num_parameters() > 0


def test_multimodal_networks_read_aux(world):
    _, val, context = world
    batch = _batch(val)
    for name in ("djf", "fusion-edsr"):
        method = METHODS.get(name)(context)
        other = dict(batch, dmo=batch["dmo"].flip(-1), dem=batch["dem"].flip(-2))
        assert not torch.allclose(method.predict(batch), method.predict(other)), name
        with pytest.raises(
            ConfigError, match=rf"method '{name}' needs modalities .* lacks \['dmo'\]"
        ):
            method.predict({k: v for k, v in batch.items() if k != "dmo"})


@pytest.mark.parametrize(("h", "w"), [(8, 8), (12, 10)])
def test_swinir_any_size_and_windows_round_trip(h, w, world):
    _, _, context = world
    x = torch.randn(2, 16, 16, 3)
    assert torch.equal(window_reverse(window_partition(x, 8), 8, 16, 16), x)
    out = METHODS.get("swinir")(context).predict({"lr_ntl": torch.randn(1, 1, h, w)})
    assert out.shape == (1, 1, h * RATIO, w * RATIO)


def test_guided_filter_keeps_edges_of_its_own_guide():
    """With guide = input and eps → 0 the guided filter is the identity (He et al., eq. 5)."""
    rng = np.random.default_rng(2)
    img = torch.from_numpy(ndimage.gaussian_filter(rng.random((1, 1, 32, 32)), (0, 0, 1, 1)))
    img[..., 10:, :] += 1.0  # a sharp edge
    out = guided_filter(img, img, radius=3, eps=1e-8)
    np.testing.assert_allclose(out.numpy(), img.numpy(), atol=1e-4)
    smooth = guided_filter(img, img, radius=3, eps=10.0)  # large eps: box blur
    assert (smooth - img).abs().max() > 0.2


# ------------------------------------------------------------------------------------------------
# bad input


def test_unknown_hparam_and_budget_fail_clearly(world):
    _, _, context = world
    with pytest.raises(
        ConfigError, match=r"unknown hyper-parameter\(s\) \['n_feat'\] for method 'edsr'"
    ):
        METHODS.get("edsr")(context, n_feat=8)
    with pytest.raises(ConfigError, match="unknown budget 'huge' for method 'rcan'"):
        METHODS.get("rcan").default_hparams("huge")
    with pytest.raises(ConfigError, match="guide must be one of"):
        METHODS.get("guided-filter")(context, guide="ndwi")
    with pytest.raises(ConfigError, match="supports ratios 2\\^n and 3, got 5"):
        METHODS.get("edsr")(MethodContext(ratio=5))


def test_ridge_solve_is_least_squares_without_prior_weight():
    from baselines.calibration import ridge_solve

    rng = np.random.default_rng(4)
    x = torch.from_numpy(rng.standard_normal((50, 4)))
    y = torch.from_numpy(rng.standard_normal(50))
    ours = ridge_solve(x, y, 1e-12, torch.zeros(4, dtype=torch.float64))
    np.testing.assert_allclose(ours.numpy(), np.linalg.lstsq(x.numpy(), y.numpy())[0], atol=1e-8)
    # a huge prior weight returns the prior
    prior = torch.arange(4, dtype=torch.float64)
    np.testing.assert_allclose(ridge_solve(x, y, 1e12, prior).numpy(), prior.numpy(), atol=1e-6)


def test_downscaling_fit_on_empty_split_fails(world):
    _, _, context = world
    empty = InMemoryDataset([], context.normalizer)
    with pytest.raises(ConfigError, match="cannot fit 'downscale-gbrt' on an empty training split"):
        METHODS.get("downscale-gbrt")(context).fit(empty, None, _tiny_protocol(), progress=False)
