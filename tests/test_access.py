"""Reading stores: open_store, DeepLightDataset (aligned crops, paired augmentations, workers),
RegionDataset + Stitcher, on a small fake store with a feature planted at known coordinates."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import fsspec
import numpy as np
import pyproj
import pytest
import torch
from torch.utils.data import DataLoader

from deeplightmd.access import (
    DeepLightDataset,
    RandomFlipRotate,
    RegionDataset,
    Stitcher,
    flip_rotate,
    open_store,
    tile_windows,
)
from deeplightmd.access.transforms import dihedral
from deeplightmd.errors import ConfigError, StoreError
from deeplightmd.sensor import SensorModel
from deeplightmd.store_format import DMO_BANDS, MODALITIES

_spec = importlib.util.spec_from_file_location(
    "fake_store", Path(__file__).parent / "data" / "fake_store.py")
fake_store = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_store)

RATIO = 8
HR_GRID = ("hr_ntl", "dmo", "dem", "isp")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return fake_store.make_fake_store(tmp_path_factory.mktemp("fake") / "fake.zarr")


@pytest.fixture(scope="module")
def features(store: str) -> np.ndarray:
    """Planted feature positions (LR row, col) of the train clips."""
    import zarr

    return np.asarray(zarr.open_group(store, mode="r")["train/feature_lr"][:])


def crop_offset(ds: DeepLightDataset, index: int, bounds: torch.Tensor) -> tuple[int, int]:
    """LR (row, col) of a crop inside its clip, recovered from the sample's bounds."""
    left, _, _, top = ds._bounds[index]
    px = fake_store.HR_PIXEL * RATIO
    return round((top - float(bounds[3])) / px), round((float(bounds[0]) - left) / px)


def assert_feature_at(sample: dict, pos: tuple[int, int]) -> None:
    """The planted feature fills LR pixel ``pos`` and exactly the matching HR block everywhere."""
    lr = sample["lr_ntl"][0].numpy()
    assert np.unravel_index(lr.argmax(), lr.shape) == pos
    r, c = pos
    for name in HR_GRID:
        x = sample[name].numpy()
        top = x.max(axis=(-2, -1), keepdims=True)
        hot = np.argwhere((x == top).all(axis=0))
        expected = np.argwhere(np.ones((RATIO, RATIO))) + np.array([r * RATIO, c * RATIO])
        np.testing.assert_array_equal(hot, expected, err_msg=name)
        assert np.allclose(top.ravel(), fake_store.FEATURE[name]), name


@pytest.mark.parametrize("hflip,vflip,k", [(False, False, 0), (True, False, 1), (False, True, 3),
                                           (True, True, 2), (True, False, 3)])
def test_crop_flip_rotate_keep_planted_feature_aligned(store, features, hflip, vflip, k):
    ds = DeepLightDataset(store, "train", crop=(6, 5), normalize=False,
                          transforms=lambda s: flip_rotate(s, hflip=hflip, vflip=vflip, k=k))
    inside = 0
    for epoch in range(4):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            sample = ds[i]
            assert sample["lr_ntl"].shape[-2:] == ((6, 5) if k % 2 == 0 else (5, 6))
            lr_shape = sample["lr_ntl"].shape[-2:]
            assert sample["hr_ntl"].shape[-2:] == tuple(RATIO * s for s in lr_shape)
            r0, c0 = crop_offset(ds, i, sample["bounds"])
            fr, fc = features[i] - (r0, c0)
            if not (0 <= fr < 6 and 0 <= fc < 5):
                assert sample["lr_ntl"].max() < 10  # the feature is outside the crop
                continue
            oracle = np.zeros((6, 5))
            oracle[fr, fc] = 1
            oracle = oracle[:, ::-1] if hflip else oracle
            oracle = oracle[::-1] if vflip else oracle
            oracle = np.rot90(oracle, k)
            assert_feature_at(sample, np.unravel_index(oracle.argmax(), oracle.shape))
            inside += 1
    assert inside >= 5


def test_random_flip_rotate_is_paired_and_varies(store):
    ds = DeepLightDataset(store, "train", normalize=False, transforms=RandomFlipRotate())
    raw = DeepLightDataset(store, "train", normalize=False)
    orientations = set()
    for epoch in range(2):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            s, ref = ds[i], raw[i]
            match = [(h, v, k) for h in (False, True) for v in (False, True) for k in range(4)
                     if torch.equal(flip_rotate(ref, h, v, k)["hr_ntl"], s["hr_ntl"])]
            assert match, "hr_ntl is not a dihedral transform of the clip"
            expected = flip_rotate(ref, *match[0])
            for name in MODALITIES:
                assert torch.equal(s[name], expected[name]), name
            orientations.add((*np.argwhere(s["lr_ntl"][0].numpy() > 100)[0].tolist(), i))
            torch.testing.assert_close(s["bounds"], ref["bounds"])
    assert len(orientations) > len(ds)  # different epochs drew different orientations


def test_dihedral_numpy_path_matches_torch_ops():
    x = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(2, 3, 5)
    for h in (False, True):
        for v in (False, True):
            for k in range(4):
                fast = dihedral(x, h, v, k)
                slow = dihedral(x.clone().requires_grad_(True), h, v, k).detach()
                a = x.numpy()[..., ::-1] if h else x.numpy()
                a = a[..., ::-1, :] if v else a
                expected = np.rot90(a, k, axes=(-2, -1))
                assert torch.equal(fast, slow) and np.array_equal(fast.numpy(), expected)


def test_crop_bounds_are_the_crop_footprint(store):
    full = DeepLightDataset(store, "val", normalize=False)
    ds = DeepLightDataset(store, "val", crop=3, normalize=False)
    for i in range(len(ds)):
        s = ds[i]
        r0, c0 = crop_offset(ds, i, s["bounds"])
        left, bottom, right, top = s["bounds"].tolist()
        px = fake_store.HR_PIXEL * RATIO
        assert (right - left, top - bottom) == pytest.approx((3 * px, 3 * px))
        np.testing.assert_array_equal(s["lr_ntl"], full[i]["lr_ntl"][:, r0:r0 + 3, c0:c0 + 3])
        np.testing.assert_array_equal(
            s["dmo"], full[i]["dmo"][:, r0 * RATIO:(r0 + 3) * RATIO, c0 * RATIO:(c0 + 3) * RATIO])
    assert s["bounds"].dtype == torch.float64
    assert isinstance(s["clip_id"], int) and s["crs"] == fake_store.CRS_WKT


def test_normalize_round_trip_and_train_statistics(store):
    norm = DeepLightDataset(store, "train")
    raw = DeepLightDataset(store, "train", normalize=False)
    # float32 resolves ~1e-7 of a normalised unit: DEM metres keep 1e-5 of their std absolute
    atol = {"dem": 1e-5 * norm.normalizer.dem_std}
    for i in range(len(norm)):
        a, b = norm[i], raw[i]
        for name in MODALITIES:
            assert a[name].dtype == torch.float32
            back = norm.normalizer.denormalize(name, a[name])
            torch.testing.assert_close(back, b[name], rtol=1e-5, atol=atol.get(name, 1e-5))
    hr = torch.stack([norm[i]["hr_ntl"] for i in range(len(norm))])
    dmo = torch.stack([norm[i]["dmo"] for i in range(len(norm))]).double()
    assert abs(hr.double().mean().item()) < 1e-4 and abs(hr.double().std().item() - 1) < 1e-3
    np.testing.assert_allclose(dmo.mean(dim=(0, 2, 3)), 0, atol=1e-4)
    assert norm.ratio == RATIO and norm.sensor_model == SensorModel(ratio=RATIO)


def _collect(ds: DeepLightDataset, workers: int) -> list[dict]:
    loader = DataLoader(ds, batch_size=2, shuffle=False, num_workers=workers)
    return list(loader)


def test_workers_yield_the_same_samples(store):
    ds = DeepLightDataset(store, "train", crop=4, transforms=RandomFlipRotate(), seed=3)
    ds.set_epoch(2)
    single, double = _collect(ds, 0), _collect(ds, 2)
    assert len(single) == len(double) == 3
    for a, b in zip(single, double, strict=True):
        for key in (*MODALITIES, "bounds", "clip_id"):
            assert torch.equal(a[key], b[key]), key
    ds.set_epoch(3)
    assert not all(torch.equal(a["lr_ntl"], b["lr_ntl"])
                   for a, b in zip(single, _collect(ds, 0), strict=True))
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._group._group is None and torch.equal(clone[(1, 2)]["dem"], ds[(1, 2)]["dem"])


def test_dataset_rejects_bad_input(store, tmp_path):
    with pytest.raises(ConfigError, match="unknown split 'tain'"):
        DeepLightDataset(store, "tain")
    with pytest.raises(ConfigError, match="unknown modality 'ntl'"):
        DeepLightDataset(store, "train", modalities=("lr_ntl", "ntl"))
    with pytest.raises(ConfigError, match="larger than the store's LR clip of 8"):
        DeepLightDataset(store, "train", crop=9)
    with pytest.raises(ConfigError, match="crop must be positive"):
        DeepLightDataset(store, "train", crop=(0, 4))
    with pytest.raises(StoreError, match="no DeepLightMD store"):
        DeepLightDataset(tmp_path / "missing.zarr", "train")
    old = fake_store.make_fake_store(tmp_path / "v2.zarr", splits={"train": 1, "val": 1, "test": 1},
                                     region_lr_shape=(2, 2), format_version=2)
    with pytest.raises(StoreError, match="format version 2"):
        DeepLightDataset(old, "train")
    with pytest.raises(StoreError, match="format version 2"):
        open_store(old, "train")
    with pytest.raises(ConfigError, match="unknown region 'atlantis'"):
        RegionDataset(store, "atlantis")
    with pytest.raises(ConfigError, match=r"tile \(4\) must be larger than overlap \(4\)"):
        RegionDataset(store, "fakeland", tile=4, overlap=4)


def test_open_store_split_is_lazy_with_names_units_and_crs(store):
    ds = open_store(store, "train")
    assert ds["hr_ntl"].chunks is not None  # dask, not loaded
    assert ds["dmo"].dims == ("clip", "band", "y", "x")
    assert ds["lr_ntl"].dims == ("clip", "lr_y", "lr_x")
    assert list(ds["band"].values) == list(DMO_BANDS)
    assert ds["hr_ntl"].attrs["units"] == "nW cm-2 sr-1"
    assert ds.rio.crs.to_wkt() == ds.rio.crs.from_wkt(fake_store.CRS_WKT).to_wkt()
    np.testing.assert_array_equal(ds["lr_ntl"].sel(clip=2).values,
                                  DeepLightDataset(store, "train", normalize=False)[2]["lr_ntl"][0])


def test_open_store_tree_and_memory_url(store):
    fs = fsspec.filesystem("memory")
    fs.put(store, "/copy.zarr", recursive=True)
    try:
        tree = open_store("memory://copy.zarr")
        hr = tree["regions/fakeland/hr"].to_dataset()
        assert set(tree.children) == {"train", "val", "test", "regions"}
        assert hr.rio.transform() == RegionDataset(store, "fakeland").transform
        assert hr.rio.crs is not None and hr.rio.transform().a == fake_store.HR_PIXEL
        lr = tree["regions/fakeland/lr"].to_dataset()
        assert lr.rio.transform().a == fake_store.HR_PIXEL * RATIO
        local = open_store(store, "test")
        np.testing.assert_array_equal(tree["test"]["dem"].values, local["dem"].values)
        ds = DeepLightDataset("memory://copy.zarr", "val", crop=2)
        assert ds[0]["dmo"].shape == (7, 16, 16)
    finally:
        fs.rm("/copy.zarr", recursive=True)


def test_plot_returns_a_figure(store):
    from matplotlib.figure import Figure

    ds = DeepLightDataset(store, "train", crop=4)
    fig = ds.plot(ds[0], suptitle="clip 0")
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert {"LR NTL", "HR NTL", "DMO (RGB)", "DEM (m)", "ISP"} <= set(titles)
    assert fig._suptitle.get_text() == "clip 0"
    assert not any(ax.get_title() for ax in ds.plot(ds[0], show_titles=False).axes)


def test_tile_windows_cover_with_equal_tiles():
    windows = tile_windows((20, 28), tile=8, overlap=2)
    cover = np.zeros((20, 28), int)
    for r, c, h, w in windows:
        assert (h, w) == (8, 8)
        cover[r:r + h, c:c + w] += 1
    assert cover.min() >= 1
    assert [w[1] for w in windows[:5]] == [0, 6, 12, 18, 20]  # last column shifted inside
    assert tile_windows((5, 40), tile=8, overlap=0)[0] == (0, 0, 5, 8)


def test_region_tiles_stitch_back_exactly(store):
    ds = RegionDataset(store, "fakeland", tile=8, overlap=3, modalities=("lr_ntl", "hr_ntl", "dmo"),
                       normalize=False)
    assert ds.hr_shape == (ds.lr_shape[0] * RATIO, ds.lr_shape[1] * RATIO) == (160, 224)
    truth = open_store(store)["regions/fakeland/hr"]["hr_ntl"].values
    lr = open_store(store)["regions/fakeland/lr"]["lr_ntl"].values
    identity, nearest, constant = ds.stitcher(), ds.stitcher(), ds.stitcher()
    for batch in DataLoader(ds, batch_size=4):
        assert batch["dmo"].shape[1:] == (7, 64, 64)
        identity.add_batch(batch["hr_ntl"], batch["window"])
        nearest.add_batch(torch.repeat_interleave(torch.repeat_interleave(
            batch["lr_ntl"], RATIO, -1), RATIO, -2), batch["window"])
        constant.add_batch(torch.full_like(batch["hr_ntl"], 7.25), batch["window"])
    np.testing.assert_array_equal(identity.result(), truth[None])
    np.testing.assert_array_equal(nearest.result()[0], np.kron(lr, np.ones((RATIO, RATIO))))
    assert (constant.result() == 7.25).all()
    assert ds.mask.shape == ds.admin.shape == ds.hr_shape and ds.mask.any() and not ds.mask.all()
    assert set(np.unique(ds.admin)) == {0, 1, 2} and ds.admin_names["2"] == "East"
    assert pyproj.CRS(ds.crs).equals(fake_store.CRS_WKT) and ds.transform.c == -497600.0


def test_stitcher_blends_disagreeing_tiles_without_a_seam():
    st = Stitcher((64, 8 * 14), ratio=8, overlap=4)
    st.add(np.zeros((64, 80)), (0, 0, 8, 10))
    st.add(np.ones((64, 80)), (0, 4, 8, 10))
    row = st.result()[32]
    assert (row[:32] == 0).all() and (row[80:] == 1).all()
    assert (np.diff(row) >= 0).all() and np.diff(row).max() < 0.05  # smooth ramp, no seam
    with pytest.raises(ConfigError, match="must be"):
        st.add(np.zeros((8, 8)), (0, 0, 8, 10))
    with pytest.raises(ConfigError, match="outside the mosaic"):
        st.add(np.zeros((64, 80)), (0, 8, 8, 10))
    with pytest.raises(ConfigError, match="no tile"):
        Stitcher((8, 8), 8).result()


def _pipeline_available() -> bool:
    """Whether the synth + build pipeline that the ``tiny_store`` fixture needs has landed."""
    try:
        from deeplightmd.builder import build_store, load_manifest  # noqa: F401
        from deeplightmd.synth import generate_world  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _pipeline_available(), reason="deeplightmd.synth/build not available yet")
def test_real_tiny_store(tiny_store):
    ds = DeepLightDataset(tiny_store, "train", crop=4, transforms=RandomFlipRotate())
    sample = ds[0]
    assert sample["hr_ntl"].shape == (1, 4 * ds.ratio, 4 * ds.ratio)
    assert sample["dmo"].shape == (7, 4 * ds.ratio, 4 * ds.ratio)
    raw = DeepLightDataset(tiny_store, "train", normalize=False)[0]
    back = ds.normalizer.denormalize("hr_ntl", DeepLightDataset(tiny_store, "train")[0]["hr_ntl"])
    torch.testing.assert_close(back, raw["hr_ntl"], rtol=1e-5, atol=1e-4)
    xr_ds = open_store(tiny_store, "train")
    assert xr_ds.rio.crs is not None and list(xr_ds["band"].values) == list(DMO_BANDS)
    for region in ds.attrs["regions"][:1]:
        reg = RegionDataset(tiny_store, region, tile=8, overlap=2, modalities=("hr_ntl",),
                            normalize=False)
        st = reg.stitcher()
        for i in range(len(reg)):
            st.add(reg[i]["hr_ntl"], reg[i]["window"])
        truth = open_store(tiny_store)[f"regions/{region}/hr"]["hr_ntl"].values
        np.testing.assert_array_equal(st.result()[0], truth)
