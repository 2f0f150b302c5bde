"""A build from real public rasters (../shared/data/real): Shanghai VIIRS as HR NTL with LR derived
×8, MGUP urban extent as ISP, a coarse DEM, and no DMO (filled with the documented constant 0)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from deeplightmd.builder import build_store, load_manifest
from deeplightmd.builder.inspect import validate_store

HR_FILE = "shanghai_ntl_500m/viirs_vnl_v2_annual/NTL_Shanghai_NPP-VIIRS_2018_masked_to_boundary.tif"
MANIFEST = """
name: shanghai-viirs-real
seed: 0
grid:
  crs: "+proj=aea +lat_0=0 +lon_0=105 +lat_1=25 +lat_2=47 +datum=WGS84 +units=m +no_defs"
  hr_pixel_size: 500
  ratio: 8
  lr_clip: 2
sources:
  hr_ntl:
    files: [HR_FILE]
    resampling: average
    oversample: 2
    valid_range: [0, 1000000]
  dmo: {constant: 0.0, bands: [1, 2, 3, 4, 5, 6, 7]}
  dem: {files: [china_coarse_dem_ndvi/china_dem_0p117deg.tif], resampling: bilinear, fill: nearest}
  isp:
    files: [shanghai_ntl_500m/urban_extent_mgup/real_sh.tif]
    resampling: average
    threshold: 0.5
derive:
  lr_ntl: {from: hr_ntl, sensor_model: {ratio: 8}, noise: true}
splits: {train: 16, val: 2, test: 2, block: 1, buffer: 1, on_shortfall: ratio}
regions:
  file: china_admin_echarts4/shanghai.geojson
  name_field: name
  test_regions: ["崇明区"]
  admin_file: china_admin_echarts4/shanghai.geojson
  admin_id_field: null
  admin_name_field: name
  admin_region_field: null
  chunk: 64
qa: {min_valid_fraction: 0.95}
"""


def test_real_shanghai_build_validates(real_data, tmp_path):
    path = tmp_path / "shanghai.yaml"
    path.write_text(MANIFEST.replace("HR_FILE", HR_FILE))
    manifest = load_manifest(str(path), world_dir=real_data)
    out = str(tmp_path / "shanghai.zarr")
    attrs = build_store(manifest, out, progress=False)
    assert sum(attrs["splits"].values()) >= 10
    assert attrs["sources"]["dmo"] == {"constant": 0.0}
    assert attrs["sensor_model"]["ratio"] == 8
    assert validate_store(out) == []
    train = xr.open_zarr(out, group="train")
    hr = train["hr_ntl"].values
    assert hr.max() > 50  # Shanghai's lights survive reprojection
    assert set(np.unique(train["isp"].values)) == {0, 1}
    # derived LR follows the HR clip mean through the sensor model's gain
    lr_mean = train["lr_ntl"].values.mean(axis=(1, 2))
    assert np.corrcoef(lr_mean, hr.mean(axis=(1, 2)))[0, 1] > 0.9
    region = xr.open_zarr(out, group="regions/崇明区/hr", decode_coords="all")
    assert region.rio.crs is not None and region["mask"].values.sum() > 100
