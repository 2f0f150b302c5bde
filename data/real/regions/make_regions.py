"""Rebuild ``heldout_regions.geojson`` and ``admin_units.geojson`` of the ``real-viirs`` track.

Sources (see PROVENANCE.md beside this script):

* Shanghai districts: ``china_admin_echarts4/shanghai.geojson`` (decoded ECharts 4.9.0 map data,
  Apache-2.0; ``../shared/data/real`` on the project machines).
* Côte d'Ivoire regions (ADM1): ``data/adm1_rf_zonal.geojson`` of GitHub ``Skerre/DSVI_CIV_Tool``
  at commit 2e88a4f5a85162b40351b73dfdd73f99b8a4dc76, i.e. OCHA COD-AB
  ``civ_admbnda_adm1_cntig_ocha_itos_20180706`` (CC BY-IGO) with zonal-statistics columns added by
  that repository (dropped here). Polygons are simplified to 0.002° (~220 m) to keep the file small.

Usage::

    python data/real/regions/make_regions.py SHANGHAI_GEOJSON CIV_ADM1_GEOJSON

Deterministic: the same inputs give byte-identical outputs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd

HERE = Path(__file__).resolve().parent
#: held-out region name → (place, [admin unit names in the source layer])
HELD_OUT = {
    "Shanghai West": ("shanghai", ["嘉定区", "青浦区", "松江区", "金山区"]),
    "CIV Centre": ("cote_divoire", ["Gbeke", "Belier", "District Autonome De Yamoussoukro",
                                    "Marahoue", "Hambol"]),
    "CIV South-West": ("cote_divoire", ["San Pedro", "Gbokle", "Nawa"]),
}
#: simplification tolerance (degrees) for the OCHA polygons
SIMPLIFY_DEG = 0.002


def admin_units(shanghai: Path, civ: Path) -> gpd.GeoDataFrame:
    """The admin units of every held-out region (ids: Chinese adcode; 3840000 + OCHA number)."""
    sh = gpd.read_file(shanghai)
    sh = gpd.GeoDataFrame({"admin_id": sh["id"], "name": sh["name"]}, geometry=sh.geometry,
                          crs="EPSG:4326")
    ci = gpd.read_file(civ).to_crs("EPSG:4326")
    ci = gpd.GeoDataFrame({"admin_id": [3840000 + int(p[2:]) for p in ci["ADM1_PCODE"]],
                           "name": ci["ADM1_FR"]},
                          geometry=ci.geometry.simplify(SIMPLIFY_DEG, preserve_topology=True),
                          crs="EPSG:4326")
    rows = []
    for region, (place, names) in HELD_OUT.items():
        layer = sh if place == "shanghai" else ci
        for name in names:
            unit = layer[layer["name"] == name]
            if len(unit) != 1:
                raise SystemExit(f"Error: admin unit {name!r} found {len(unit)} times")
            rows.append(unit.assign(region=region, place=place))
    out = gpd.GeoDataFrame(pd.concat(rows, ignore_index=True), crs="EPSG:4326")
    out["admin_id"] = out["admin_id"].astype(int)
    return out[["admin_id", "name", "region", "place", "geometry"]]


def regions(units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One polygon per held-out region: the union of its admin units."""
    parts = []
    for region, (place, _) in HELD_OUT.items():
        geom = units[units["region"] == region].geometry.union_all()
        parts.append({"name": region, "place": place, "geometry": geom})
    return gpd.GeoDataFrame(parts, crs="EPSG:4326")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("Error: usage: make_regions.py SHANGHAI_GEOJSON CIV_ADM1_GEOJSON", file=sys.stderr)
        return 2
    units = admin_units(Path(argv[0]), Path(argv[1]))
    units.to_file(HERE / "admin_units.geojson", driver="GeoJSON", COORDINATE_PRECISION=5)
    regions(units).to_file(HERE / "heldout_regions.geojson", driver="GeoJSON",
                           COORDINATE_PRECISION=5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
