"""The ``real-viirs`` track: real VIIRS over three places, shipped in ``data/real`` (no skip).

One build of the preset (~1 min on one core) serves every test here; the counts asserted are the
ones documented in docs/real-data.md.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from benchmarks.runner import RegionalSettings, run_benchmark
from deeplightmd.sensor import block_mean

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parents[1] / "data" / "real"
#: sha256 of the shipped rasters, as recorded in their PROVENANCE.md
SHA256 = {
    "shanghai/NTL_Shanghai_NPP-VIIRS_2013_2022_2020.tif":
        "8eb41ea27f221a58765ea7887fce925ecbb05acf47ed881fe619d3f055d1d9af",
    "pune/ntl_dec2025_city.tif":
        "dbc586e1b49a8757306bba15d83cd6fd501f5a2343bdcc62ffb408a5ce1d6fb0",
    "cote_divoire/ntl.tif":
        "2c01f2dd5aa651acd68c115e590be4774c7decd5f8ca67f67fd67f1d3d92946c",
}
REGIONS = {"Shanghai West": 4, "CIV Centre": 5, "CIV South-West": 3}  # name → admin units
#: EASE-Grid 2.0 x (m) separating the places: Côte d'Ivoire < 0 < Pune < 9e6 < Shanghai
PLACE_EDGES = (0.0, 9.0e6)


def _place_counts(x_left: np.ndarray) -> tuple[int, int, int]:
    civ = int((x_left < PLACE_EDGES[0]).sum())
    shanghai = int((x_left > PLACE_EDGES[1]).sum())
    return civ, len(x_left) - civ - shanghai, shanghai


@pytest.fixture(scope="module")
def real_viirs_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    from deeplightmd.builder import build_store, load_manifest

    out = str(tmp_path_factory.mktemp("real_viirs") / "real.zarr")
    build_store(load_manifest("real-viirs"), out, workers=1, progress=False)
    return out


def test_shipped_rasters_match_their_provenance():
    for rel, digest in SHA256.items():
        assert hashlib.sha256((DATA / rel).read_bytes()).hexdigest() == digest, rel
        assert digest in (DATA / rel).parent.joinpath("PROVENANCE.md").read_text()


def test_real_viirs_builds_with_the_documented_counts(real_viirs_store):
    from deeplightmd.access import open_store
    from deeplightmd.store_format import read_store_attrs

    attrs = read_store_attrs(real_viirs_store)
    grid = attrs["grid"]
    assert (grid["ratio"], grid["lr_clip"], grid["hr_clip"], grid["hr_pixel_size"]) == \
        (8, 4, 32, 500)
    assert attrs["splits"] == {"train": 276, "val": 40, "test": 80}
    assert attrs["qa"]["eligible"] == 396
    assert attrs["regions"] == list(REGIONS)
    files = attrs["sources"]["hr_ntl"]["files"]
    assert [f["path"] for f in files] == ["shanghai/vnl_2020_nodata0.vrt",
                                          "pune/ntl_dec2025_city.tif", "cote_divoire/ntl.tif"]
    assert [f["nodata"] for f in files] == [0.0, None, None]  # 0 fill in Shanghai, NaN elsewhere
    assert attrs["sources"]["lr_ntl"] == {"derived_from": "hr_ntl", "noise": False}
    # every place contributes training clips; the test split holds Côte d'Ivoire and Pune
    train = open_store(real_viirs_store, split="train")
    test = open_store(real_viirs_store, split="test").load()
    assert _place_counts(train.bounds.values[:, 0]) == (249, 19, 8)
    assert _place_counts(test.bounds.values[:, 0]) == (48, 28, 4)
    # LR is the exact 8x8 block mean of HR (no blur, gain, floor or noise)
    hr, lr = test.hr_ntl.values.astype(np.float64), test.lr_ntl.values.astype(np.float64)
    np.testing.assert_allclose(lr, block_mean(hr, 8), rtol=1e-5, atol=1e-5)
    # real radiance: bright urban cores and a dark rural background are both present
    assert hr.max() > 100 and np.median(hr) < 2


def test_real_viirs_bicubic_defines_admin_r2_and_a_meaningful_lit_iou(real_viirs_store):
    results = run_benchmark("bicubic", real_viirs_store, device="cpu", progress=False,
                            regional=RegionalSettings(tile=16, overlap=4))
    assert results["dataset"]["n_clips"] == 80
    regional = results["metrics"]["regional"]
    assert set(regional) == set(REGIONS)
    for name, n_units in REGIONS.items():
        metrics = regional[name]
        assert metrics["admin_n"] == n_units
        assert metrics["admin_r2"] is not None and np.isfinite(metrics["admin_r2"])
        # aggregation-derived LR: bicubic keeps each region's total light within 5 %
        assert abs(metrics["total_light_rel_error"]) < 0.05
    # the rural regions have a lit area that interpolation does not reproduce exactly
    assert regional["CIV Centre"]["lit_iou"] < 0.9
