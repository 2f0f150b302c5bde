"""Georeferenced clips: one clip of a split written with rioxarray lands at its recorded place."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from deeplightmd.access import clip_dataarray, open_store
from deeplightmd.builder.read import RasterRead, read_to_grid
from deeplightmd.errors import ConfigError
from deeplightmd.store_format import read_store_attrs


@pytest.mark.parametrize("name", ["hr_ntl", "lr_ntl", "dmo"])
def test_clip_round_trips_through_a_geotiff(tiny_store, tmp_path, name):
    ds = open_store(tiny_store, split="test")
    crs_wkt = read_store_attrs(tiny_store)["grid"]["crs_wkt"]
    k = 1
    bounds = tuple(float(v) for v in ds["bounds"].values[k])
    da = clip_dataarray(ds, k=k, name=name)
    assert da.rio.crs == CRS.from_wkt(crs_wkt) and da.attrs["bounds"] == list(bounds)
    path = tmp_path / f"{name}.tif"
    da.rio.to_raster(path)
    stored = np.asarray(ds[name].isel(clip=k).values)
    stored = stored if stored.ndim == 3 else stored[None]
    with rasterio.open(path) as src:
        assert tuple(src.bounds) == pytest.approx(bounds, abs=1e-6)
        assert src.crs == CRS.from_wkt(crs_wkt)
        assert np.array_equal(src.read(), stored)
        transform, shape = src.transform, src.shape
    # reading the GeoTIFF back onto the clip's own grid lands on the source pixels
    left, _, right, top = bounds
    grid = Affine((right - left) / shape[1], 0.0, left, 0.0, -(right - left) / shape[1], top)
    assert transform.almost_equals(grid)
    back = read_to_grid([str(path)], crs_wkt, grid, shape, "nearest",
                        RasterRead(bands=tuple(range(1, stored.shape[0] + 1))))
    assert np.array_equal(back, stored.astype(back.dtype))


def test_isel_clip_writes_at_the_recorded_bounds(tiny_store, tmp_path):
    """The issue's line: ``open_store(s, split="test").isel(clip=0).hr_ntl.rio.to_raster``."""
    ds = open_store(tiny_store, split="test")
    for k in range(ds.sizes["clip"]):
        path = tmp_path / f"c{k}.tif"
        ds.isel(clip=k).hr_ntl.rio.to_raster(path)
        with rasterio.open(path) as src:
            assert tuple(src.bounds) == pytest.approx(tuple(ds["bounds"].values[k]), abs=1e-6)
            assert np.array_equal(src.read(1), ds["hr_ntl"].isel(clip=k).values)
    one = ds.sel(clip=int(ds["clip_id"].values[-1]))
    assert one["dmo"].rio.transform().c == pytest.approx(float(ds["bounds"].values[-1][0]))
    lr = one["lr_ntl"].rio.set_spatial_dims("lr_x", "lr_y")
    assert lr.rio.resolution()[0] == pytest.approx(8 * 60.0)


def test_clip_dataarray_from_a_path_and_bad_input(tiny_store, tmp_path):
    da = clip_dataarray(tiny_store, "val", 0)
    assert da.dims == ("y", "x") and da.rio.transform().a == pytest.approx(60.0)
    with pytest.raises(ConfigError, match="out of range"):
        clip_dataarray(tiny_store, "val", 99)
    with pytest.raises(ConfigError, match="unknown modality 'ndvi'"):
        clip_dataarray(tiny_store, "val", 0, name="ndvi")
